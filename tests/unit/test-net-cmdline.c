/* SPDX-License-Identifier: MIT */
/*
 * The guest's side of the network boot keys (docs/protocol.md): hotcell-init's command-line
 * parser (src/guest/boot.c, built here with the host compiler) takes what the host writes
 * (hc_net_guest_cmdline) and refuses malformed values.
 */
#include <arpa/inet.h>
#include <stdarg.h>

#include "../../src/guest/boot.c"
#include "net/net.h"
#include "test.h"

/* The rest of hotcell-init that boot.c refers to. */
bool guest_debug;
void guest_log(const char *fmt, ...)
{
	(void)fmt;
}
void guest_log_debug(const char *fmt, ...)
{
	(void)fmt;
}
int guest_net_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	(void)cfg;
	(void)msg;
	(void)msglen;
	return 0;
}
int guest_hosts_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	(void)cfg;
	(void)msg;
	(void)msglen;
	return 0;
}

int guest_dns_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	(void)cfg;
	(void)msg;
	(void)msglen;
	return 0;
}

/* --tmpfs and --dns: hotcell.tmpfs=PATH[:OPTS] and hotcell.nameserver=IP, repeatable, in
 * order; a bad path or address is refused. */
TEST(tmpfs_and_nameserver_keys)
{
	struct guest_boot_cfg cfg;
	char msg[256] = "";

	ASSERT_EQ_INT(
		guest_boot_parse_cmdline("hotcell.root=block hotcell.tmpfs=/scratch "
					 "hotcell.tmpfs=/data:size=8m,mode=0700,exec "
					 "hotcell.nameserver=9.9.9.9 hotcell.nameserver=fd00::53",
					 &cfg, msg, sizeof(msg)),
		0);
	ASSERT_EQ_INT(cfg.ntmpfs, 2);
	ASSERT_EQ_STR(cfg.tmpfs[0].path, "/scratch");
	ASSERT_EQ_STR(cfg.tmpfs[0].opts, "");
	ASSERT_EQ_STR(cfg.tmpfs[1].path, "/data");
	ASSERT_EQ_STR(cfg.tmpfs[1].opts, "size=8m,mode=0700,exec");
	ASSERT_EQ_INT(cfg.nnameservers, 2);
	ASSERT_EQ_STR(cfg.nameservers[1], "fd00::53");
	ASSERT_TRUE(guest_boot_parse_cmdline("hotcell.tmpfs=relative", &cfg, msg, sizeof(msg)) < 0);
	ASSERT_TRUE(guest_boot_parse_cmdline("hotcell.nameserver=nine", &cfg, msg, sizeof(msg)) <
		    0);
}

/* --add-host: hotcell.host=NAME:IP, repeatable, in order; IPv6 after the first ':'. */
TEST(add_host_keys)
{
	struct guest_boot_cfg cfg;
	char msg[256] = "";

	ASSERT_EQ_INT(guest_boot_parse_cmdline("hotcell.root=block hotcell.host=db:10.1.2.3 "
					       "hotcell.host=v6.test:fd00::1",
					       &cfg, msg, sizeof(msg)),
		      0);
	ASSERT_EQ_INT(cfg.nhosts, 2);
	ASSERT_EQ_STR(cfg.hosts[0].name, "db");
	ASSERT_EQ_STR(cfg.hosts[0].ip, "10.1.2.3");
	ASSERT_EQ_STR(cfg.hosts[1].name, "v6.test");
	ASSERT_EQ_STR(cfg.hosts[1].ip, "fd00::1");
}

TEST(host_keys_parse)
{
	struct hc_net n = {0};
	struct hc_buf b = HC_BUF_INIT(0);
	struct guest_boot_cfg cfg;
	char msg[256] = "", ip[INET_ADDRSTRLEN];

	hc_net_lease_name(&n.lease, 0x0af10a04);
	ASSERT_TRUE(hc_buf_puts(&b, "console=ttyS0 hotcell.root=block hotcell.channel=serial") ==
		    0);
	ASSERT_OK(hc_net_guest_cmdline(&n, &b), NULL);
	ASSERT_EQ_INT(guest_boot_parse_cmdline(b.data, &cfg, msg, sizeof(msg)), 0);
	ASSERT_EQ_STR(inet_ntop(AF_INET, &cfg.ip, ip, sizeof(ip)), "10.241.10.6");
	ASSERT_EQ_INT(cfg.prefix, 30);
	ASSERT_EQ_STR(inet_ntop(AF_INET, &cfg.gw, ip, sizeof(ip)), "10.241.10.5");
	ASSERT_EQ_STR(inet_ntop(AF_INET, &cfg.dns, ip, sizeof(ip)), "10.241.10.5");
	ASSERT_EQ_INT(cfg.mtu, 1500);
	hc_buf_free(&b);
}

TEST(no_keys_no_network)
{
	struct guest_boot_cfg cfg;
	char msg[256] = "";

	ASSERT_EQ_INT(guest_boot_parse_cmdline("hotcell.root=block hotcell.channel=serial", &cfg,
					       msg, sizeof(msg)),
		      0);
	ASSERT_EQ_INT(cfg.ip, 0);
	ASSERT_EQ_INT(cfg.gw, 0);
	ASSERT_EQ_INT(cfg.mtu, 0);
}

TEST(bad_values)
{
	static const char *const bad[] = {
		"hotcell.ip=10.0.0.2",	 "hotcell.ip=10.0.0.2/33",
		"hotcell.ip=10.0.0.2/0", "hotcell.ip=10.0.0/30",
		"hotcell.ip=/30",	 "hotcell.ip=10.0.0.2/3x",
		"hotcell.gw=10.0.0.256", "hotcell.gw=",
		"hotcell.dns=name.test", "hotcell.mtu=67",
		"hotcell.mtu=65536",	 "hotcell.mtu=1500x",
		"hotcell.mtu=",		 "hotcell.host=db",
		"hotcell.host=:1.2.3.4", "hotcell.host=d_b:1.2.3.4",
		"hotcell.host=db:1.2.3", "hotcell.host=db:",
	};
	struct guest_boot_cfg cfg;

	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++) {
		char msg[256] = "";

		if (guest_boot_parse_cmdline(bad[i], &cfg, msg, sizeof(msg)) == 0)
			FAILF("'%s' was accepted", bad[i]);
		if (!strstr(msg, "hotcell."))
			FAILF("'%s': message '%s' does not name the key", bad[i], msg);
	}
}

int main(void)
{
	RUN(host_keys_parse);
	RUN(add_host_keys);
	RUN(tmpfs_and_nameserver_keys);
	RUN(no_keys_no_network);
	RUN(bad_values);
	return test_summary();
}
