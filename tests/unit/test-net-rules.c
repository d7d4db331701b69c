/* SPDX-License-Identifier: MIT */
/*
 * What src/net generates: the nftables commands of a VM (inet, full, allow-list), the
 * deletion batch, dnsmasq's argv, the guest's boot keys, and the input checks (--allow-host,
 * -p, resolv.conf).
 */
#include <arpa/inet.h>

#include "net/net.h"
#include "proto/boot.h"
#include "test.h"

static void make_net(struct hc_net *n, bool full, const char *const *allow, size_t n_allow)
{
	memset(n, 0, sizeof(*n));
	n->lease.fd = -1;
	hc_net_lease_name(&n->lease, 0x0af10a04);
	n->opts.full = full;
	n->opts.allow_hosts = allow;
	n->opts.n_allow_hosts = n_allow;
	inet_pton(AF_INET, "203.0.113.53", &n->dns[0]);
	inet_pton(AF_INET, "127.0.0.53", &n->dns[1]);
	n->n_dns = 2;
}

static const char *line_with(const char *text, const char *needle)
{
	return strstr(text, needle);
}

TEST(rules_inet)
{
	struct hc_net n;
	struct hc_buf b = HC_BUF_INIT(0);

	make_net(&n, false, NULL, 0);
	ASSERT_OK(hc_net_rules_add_cmds(&n, &b), NULL);
	const char *t = b.data;
	const char *meta = line_with(t, "add rule inet hotcell fwd_0af10a04 iifname "
					"\"hc-0af10a04\" ip daddr 169.254.169.254 drop");
	const char *priv =
		line_with(t, "ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, "
			     "127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, "
			     "224.0.0.0/4, 240.0.0.0/4 } drop");
	const char *est = line_with(t, "fwd_0af10a04 iifname \"hc-0af10a04\" ct state "
				       "established,related accept");
	ASSERT_TRUE(line_with(t, "add table inet hotcell\n") == t);
	ASSERT_TRUE(line_with(t, "add chain inet hotcell fwd_0af10a04 { type filter hook forward "
				 "priority filter; policy accept; }"));
	/* Cloud metadata is the first rule of the chain. */
	ASSERT_TRUE(meta && priv && est);
	ASSERT_TRUE(meta < est && est < priv);
	ASSERT_TRUE(meta == strstr(t, "add rule"));
	ASSERT_TRUE(line_with(t, "ip saddr != 10.241.10.6 drop"));
	ASSERT_TRUE(line_with(t, "meta nfproto != ipv4 drop"));
	ASSERT_TRUE(line_with(t, "fwd_0af10a04 oifname \"hc-0af10a04\" drop"));
	/* The host: only DNS on the gateway. */
	ASSERT_TRUE(line_with(t,
			      "in_0af10a04 iifname \"hc-0af10a04\" ip saddr 10.241.10.6 ip daddr "
			      "10.241.10.5 meta l4proto { tcp, udp } th dport 53 accept"));
	ASSERT_TRUE(line_with(t, "in_0af10a04 iifname \"hc-0af10a04\" drop"));
	ASSERT_TRUE(line_with(t, "nat_0af10a04 { type nat hook postrouting priority srcnat;"));
	ASSERT_TRUE(line_with(t, "ip saddr 10.241.10.6 oifname != \"hc-0af10a04\" masquerade"));
	ASSERT_TRUE(!line_with(t, "allow_"));
	hc_buf_free(&b);
}

TEST(rules_full)
{
	struct hc_net n;
	struct hc_buf b = HC_BUF_INIT(0);

	make_net(&n, true, NULL, 0);
	ASSERT_OK(hc_net_rules_add_cmds(&n, &b), NULL);
	ASSERT_TRUE(!line_with(b.data, "192.168.0.0/16"));
	ASSERT_TRUE(!line_with(b.data, "169.254.169.254"));
	/* Still: anti-spoofing, no IPv6, nothing unsolicited in, the host closed. */
	ASSERT_TRUE(line_with(b.data, "ip saddr != 10.241.10.6 drop"));
	ASSERT_TRUE(line_with(b.data, "meta nfproto != ipv4 drop"));
	ASSERT_TRUE(line_with(b.data, "in_0af10a04 iifname \"hc-0af10a04\" drop"));
	hc_buf_free(&b);
}

TEST(rules_allow)
{
	static const char *const allow[] = {"pypi.org", "*.example.com"};
	struct hc_net n;
	struct hc_buf b = HC_BUF_INIT(0);
	char **argv = NULL;

	make_net(&n, false, allow, 2);
	ASSERT_OK(hc_net_rules_add_cmds(&n, &b), NULL);
	const char *set =
		line_with(b.data, "add set inet hotcell allow_0af10a04 { type ipv4_addr; }");
	const char *use = line_with(b.data, "ip daddr != @allow_0af10a04 drop");
	ASSERT_TRUE(set && use && set < use);
	hc_buf_free(&b);

	ASSERT_OK(hc_net_dnsmasq_argv(&n, &argv), NULL);
	struct hc_buf all = HC_BUF_INIT(0);
	for (char **p = argv; *p; p++)
		ASSERT_TRUE(hc_buf_printf(&all, "%s\n", *p) == 0);
	ASSERT_TRUE(line_with(all.data, "--listen-address=10.241.10.5\n"));
	ASSERT_TRUE(line_with(all.data, "--bind-interfaces\n"));
	ASSERT_TRUE(line_with(all.data, "--conf-file=/dev/null\n"));
	ASSERT_TRUE(line_with(all.data, "--server=/pypi.org/203.0.113.53\n"));
	ASSERT_TRUE(line_with(all.data, "--server=/*.example.com/127.0.0.53\n"));
	ASSERT_TRUE(line_with(all.data, "--nftset=/pypi.org/4#inet#hotcell#allow_0af10a04\n"));
	ASSERT_TRUE(line_with(all.data, "--nftset=/*.example.com/4#inet#hotcell#allow_0af10a04\n"));
	ASSERT_TRUE(line_with(all.data, "--address=/#/\n"));
	/* No catch-all upstream with an allow-list. */
	ASSERT_TRUE(!line_with(all.data, "--server=203.0.113.53\n"));
	hc_buf_free(&all);
	hc_net_argv_free(argv);
}

TEST(dnsmasq_plain)
{
	struct hc_net n;
	char **argv = NULL;
	bool up1 = false, up2 = false, nx = false;

	make_net(&n, false, NULL, 0);
	ASSERT_OK(hc_net_dnsmasq_argv(&n, &argv), NULL);
	ASSERT_EQ_STR(argv[0], "dnsmasq");
	for (char **p = argv; *p; p++) {
		up1 |= hc_streq(*p, "--server=203.0.113.53");
		up2 |= hc_streq(*p, "--server=127.0.0.53");
		nx |= hc_streq(*p, "--address=/#/");
	}
	ASSERT_TRUE(up1 && up2 && !nx);
	hc_net_argv_free(argv);
}

TEST(rules_delete)
{
	struct hc_net n;
	struct hc_buf b = HC_BUF_INIT(0);

	make_net(&n, false, NULL, 0);
	ASSERT_OK(hc_net_rules_del_cmds(&n.lease, true, &b), NULL);
	ASSERT_EQ_STR(b.data, "delete chain inet hotcell fwd_0af10a04\n"
			      "delete chain inet hotcell in_0af10a04\n"
			      "delete chain inet hotcell nat_0af10a04\n"
			      "delete set inet hotcell allow_0af10a04\n");
	hc_buf_free(&b);
}

TEST(guest_keys)
{
	struct hc_net n;
	struct hc_buf b = HC_BUF_INIT(0);

	make_net(&n, false, NULL, 0);
	ASSERT_OK(hc_net_guest_cmdline(&n, &b), NULL);
	ASSERT_EQ_STR(b.data, " hotcell.ip=10.241.10.6/30 hotcell.gw=10.241.10.5 "
			      "hotcell.dns=10.241.10.5 hotcell.mtu=1500");
	hc_buf_free(&b);
}

TEST(host_check)
{
	struct hc_error e = {0};

	ASSERT_OK(hc_net_host_check("pypi.org", &e), &e);
	ASSERT_OK(hc_net_host_check("*.example.com", &e), &e);
	ASSERT_OK(hc_net_host_check("files.pythonhosted.org", &e), &e);
	ASSERT_OK(hc_net_host_check("a-b.c9.io", &e), &e);
	ASSERT_ERR(hc_net_host_check("localhost", &e)); /* no dot */
	ASSERT_ERR(hc_net_host_check("1.2.3.4", &e));	/* an IP literal */
	ASSERT_ERR(hc_net_host_check("bad_name.test", &e));
	ASSERT_ERR(hc_net_host_check("-a.test", &e));
	ASSERT_ERR(hc_net_host_check("a..test", &e));
	ASSERT_ERR(hc_net_host_check("a.test.", &e));
	ASSERT_ERR(hc_net_host_check("*.", &e));
	ASSERT_ERR(hc_net_host_check("a.*.test", &e));
	ASSERT_ERR(hc_net_host_check("a/b.test", &e));
	ASSERT_ERR(hc_net_host_check("", &e));
	ASSERT_ERR(hc_net_host_check(NULL, &e));
	ASSERT_TRUE(strstr(e.message, "--allow-host"));
}

TEST(port_parse)
{
	struct hc_net_port p;
	struct hc_error e = {0};
	char ip[INET_ADDRSTRLEN];

	ASSERT_OK(hc_net_port_parse("8080:80", &p, &e), &e);
	ASSERT_EQ_INT(p.host, 8080);
	ASSERT_EQ_INT(p.guest, 80);
	ASSERT_EQ_INT(p.proto, HC_NET_TCP);
	ASSERT_EQ_STR(inet_ntop(AF_INET, &p.host_ip, ip, sizeof(ip)), "127.0.0.1");
	ASSERT_OK(hc_net_port_parse("198.51.100.1:53:5353/udp", &p, &e), &e);
	ASSERT_EQ_STR(inet_ntop(AF_INET, &p.host_ip, ip, sizeof(ip)), "198.51.100.1");
	ASSERT_EQ_INT(p.proto, HC_NET_UDP);
	ASSERT_EQ_INT(p.guest, 5353);
	ASSERT_OK(hc_net_port_parse("1:65535/tcp", &p, &e), &e);
	static const char *const bad[] = {
		"80",	       "0:80",	"80:0",	 "65536:80",	"80:80/sctp",
		"a:80",	       "80:",	":80",	 "1.2.3:80:80", "x:1:2",
		"80:80:80:80", "-1:80", "+1:80", "80:80/",	""};
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++)
		if (hc_net_port_parse(bad[i], &p, &e) == 0)
			FAILF("'%s' was accepted", bad[i]);
	ASSERT_TRUE(strstr(e.message, "expected [IP:]HOSTPORT:GUESTPORT"));
}

TEST(resolvers)
{
	struct in_addr a[3];
	char ip[INET_ADDRSTRLEN];
	const char *conf = "# comment\nsearch example.com\nnameserver 203.0.113.53\n"
			   "nameserver ::1\nnameserver   127.0.0.53  \noptions edns0\n"
			   "nameserver 192.0.2.1\nnameserver 192.0.2.2\n";

	ASSERT_EQ_INT(hc_net_resolvers_parse(conf, a, 3), 3);
	ASSERT_EQ_STR(inet_ntop(AF_INET, &a[0], ip, sizeof(ip)), "203.0.113.53");
	ASSERT_EQ_STR(inet_ntop(AF_INET, &a[1], ip, sizeof(ip)), "127.0.0.53");
	ASSERT_EQ_STR(inet_ntop(AF_INET, &a[2], ip, sizeof(ip)), "192.0.2.1");
	ASSERT_EQ_INT(hc_net_resolvers_parse("", a, 3), 0);
}

int main(void)
{
	RUN(rules_inet);
	RUN(rules_full);
	RUN(rules_allow);
	RUN(dnsmasq_plain);
	RUN(rules_delete);
	RUN(guest_keys);
	RUN(host_check);
	RUN(port_parse);
	RUN(resolvers);
	return test_summary();
}
