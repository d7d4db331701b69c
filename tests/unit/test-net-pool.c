/* SPDX-License-Identifier: MIT */
/*
 * The address pool (src/net/pool.c): pool parsing, the host-route check, leases that never
 * collide while their owners live, and stale leases (owner gone) reclaimed.
 */
#include <arpa/inet.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "core/path.h"
#include "net/net.h"
#include "test.h"
#include "core/owner.h"

static char dir[] = "/tmp/hc-net-pool.XXXXXX";

TEST(pool_parse)
{
	struct hc_error e = {0};
	uint32_t base = 0;
	unsigned prefix = 0;

	ASSERT_OK(hc_net_pool_parse("10.241.0.0/16", &base, &prefix, &e), &e);
	ASSERT_EQ_INT(base, 0x0af10000);
	ASSERT_EQ_INT(prefix, 16);
	ASSERT_OK(hc_net_pool_parse("10.9.8.4/30", &base, &prefix, &e), &e);
	ASSERT_ERR(hc_net_pool_parse("10.241.0.1/16", &base, &prefix, &e));
	ASSERT_TRUE(strstr(e.message, "bits beyond"));
	ASSERT_ERR(hc_net_pool_parse("10.241.0.0/31", &base, &prefix, &e));
	ASSERT_ERR(hc_net_pool_parse("10.241.0.0/7", &base, &prefix, &e));
	ASSERT_ERR(hc_net_pool_parse("10.241.0.0", &base, &prefix, &e));
	ASSERT_ERR(hc_net_pool_parse("banana/16", &base, &prefix, &e));
	ASSERT_ERR(hc_net_pool_parse(NULL, &base, &prefix, &e));
}

/* /proc/net/route: the default route never counts, our own TAPs' routes never count. */
static const char routes[] =
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	"eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	"eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"	       /* 192.168.0.0/24 */
	"br0\t0004F10A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"	       /* 10.241.4.0/24 */
	"hc-0af10800\t0008F10A\t00000000\t0001\t0\t0\t0\tFCFFFFFF\t0\t0\t0\n"; /* ours */

TEST(routes_overlap)
{
	ASSERT_TRUE(hc_net_routes_overlap(routes, 0xc0a80004, 4));  /* 192.168.0.4/30 */
	ASSERT_TRUE(!hc_net_routes_overlap(routes, 0xc0a80104, 4)); /* 192.168.1.4/30 */
	ASSERT_TRUE(hc_net_routes_overlap(routes, 0x0af104fc, 4));  /* 10.241.4.252/30 */
	ASSERT_TRUE(!hc_net_routes_overlap(routes, 0x0af10500, 4));
	ASSERT_TRUE(!hc_net_routes_overlap(routes, 0x0af10800, 4)); /* an hc- TAP's own */
	/* A route inside a wider range counts too. */
	ASSERT_TRUE(hc_net_routes_overlap(routes, 0x0af10000, 1u << 16));
	ASSERT_TRUE(!hc_net_routes_overlap("", 0x0af10000, 4));
	ASSERT_TRUE(!hc_net_routes_overlap(NULL, 0x0af10000, 4));
}

TEST(lease_names)
{
	struct hc_net_lease l = {.fd = -1};
	char a[INET_ADDRSTRLEN];

	hc_net_lease_name(&l, 0x0af10a04);
	ASSERT_EQ_STR(l.id, "0af10a04");
	ASSERT_EQ_STR(l.tap, "hc-0af10a04");
	ASSERT_EQ_STR(l.mac, "02:68:63:f1:0a:04");
	ASSERT_EQ_STR(inet_ntop(AF_INET, &l.gw, a, sizeof(a)), "10.241.10.5");
	ASSERT_EQ_STR(inet_ntop(AF_INET, &l.guest, a, sizeof(a)), "10.241.10.6");
	ASSERT_TRUE(strlen(l.tap) < 16); /* IFNAMSIZ */
}

static int reclaimed;
static void count_reclaim(const struct hc_net_lease *l, void *arg)
{
	(void)l;
	(void)arg;
	reclaimed++;
}

/* A /28 has 4 /30s: four live leases take them all, distinct; a fifth is "exhausted". */
TEST(lease_no_collision)
{
	struct hc_net_lease l[5];
	struct hc_error e = {0};

	for (int i = 0; i < 4; i++) {
		ASSERT_OK(hc_net_lease_acquire(dir, 0x0af10000, 28, "", count_reclaim, NULL, &l[i],
					       &e),
			  &e);
		for (int j = 0; j < i; j++)
			ASSERT_TRUE(l[i].net.s_addr != l[j].net.s_addr);
	}
	ASSERT_ERR(hc_net_lease_acquire(dir, 0x0af10000, 28, "", count_reclaim, NULL, &l[4], &e));
	ASSERT_TRUE(strstr(e.message, "exhausted"));
	/* Another process sees the same: the flocks are per open file, not per process. */
	pid_t pid = fork();
	if (pid == 0) {
		struct hc_net_lease x;
		struct hc_error e2 = {0};
		_exit(hc_net_lease_acquire(dir, 0x0af10000, 28, "", NULL, NULL, &x, &e2) < 0 ? 0
											     : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_EQ_INT(reclaimed, 0);
	for (int i = 0; i < 4; i++)
		hc_net_lease_release(&l[i]);
	ASSERT_TRUE(!hc_path_exists(l[0].path));
	hc_net_lease_release(&l[0]); /* twice is fine */
}

/* An owner killed without its teardown leaves its lease file unlocked: the next acquire
 * reclaims it (and ends the helper it recorded, when that very process still runs). */
TEST(lease_stale_reclaimed)
{
	struct hc_net_lease l;
	struct hc_error e = {0};
	int p[2];

	reclaimed = 0;
	ASSERT_TRUE(pipe(p) == 0);
	pid_t owner = fork();
	if (owner == 0) {
		struct hc_net_lease x;
		struct hc_error e2 = {0};
		char c = 1;

		if (hc_net_lease_acquire(dir, 0x0af20000, 30, "", NULL, NULL, &x, &e2) < 0)
			_exit(1);
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	ASSERT_TRUE(read(p[0], &c, 1) == 1);
	close(p[0]);
	close(p[1]);
	/* While it lives, its only /30 is taken. */
	ASSERT_ERR(hc_net_lease_acquire(dir, 0x0af20000, 30, "", count_reclaim, NULL, &l, &e));
	ASSERT_EQ_INT(reclaimed, 0);
	kill(owner, SIGKILL);
	waitpid(owner, NULL, 0);
	ASSERT_OK(hc_net_lease_acquire(dir, 0x0af20000, 30, "", count_reclaim, NULL, &l, &e), &e);
	ASSERT_EQ_INT(reclaimed, 1);
	ASSERT_EQ_INT(ntohl(l.net.s_addr), 0x0af20000);
	/* The record is ours now: pid and start time. */
	char rec[96] = "";
	ASSERT_TRUE(pread(l.fd, rec, sizeof(rec) - 1, 0) > 0);
	ASSERT_EQ_INT(atoi(rec), getpid());
	hc_net_lease_release(&l);
}

/* A /30 on a host route is skipped. */
TEST(lease_skips_routes)
{
	struct hc_net_lease l;
	struct hc_error e = {0};
	static const char r[] =
		"Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
		"eth0\t0000F30A\t00000000\t0001\t0\t0\t0\tFCFFFFFF\n"; /* 10.243.0.0/30 */

	ASSERT_OK(hc_net_lease_acquire(dir, 0x0af30000, 29, r, NULL, NULL, &l, &e), &e);
	ASSERT_EQ_INT(ntohl(l.net.s_addr), 0x0af30004);
	hc_net_lease_release(&l);
	ASSERT_ERR(hc_net_lease_acquire(dir, 0x0af30000, 30, r, NULL, NULL, &l, &e));
}

/* Field 22 of /proc/PID/stat, the one stale helpers are recognised by. */
TEST(start_time)
{
	char buf[1024] = "", *p;
	FILE *f = fopen("/proc/self/stat", "re");
	unsigned long long want = 0;

	ASSERT_TRUE(f && fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')') + 2; /* field 3 */
	for (int field = 3; field < 22; field++)
		p = strchr(p, ' ') + 1;
	want = strtoull(p, NULL, 10);
	ASSERT_TRUE(want > 0);
	ASSERT_EQ_INT(hc_owner_start_time(getpid()), want);
	ASSERT_EQ_INT(hc_owner_start_time(0x7ffffff0), 0);
}

int main(void)
{
	struct hc_error e = {0};

	if (!mkdtemp(dir))
		return 1;
	RUN(pool_parse);
	RUN(routes_overlap);
	RUN(lease_names);
	RUN(lease_no_collision);
	RUN(lease_stale_reclaimed);
	RUN(lease_skips_routes);
	RUN(start_time);
	hc_path_rm_rf(dir, &e);
	return test_summary();
}
