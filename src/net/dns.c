/* SPDX-License-Identifier: MIT */
/*
 * The VM's resolver: one dnsmasq (Debian's dnsmasq-base) per VM, on its gateway address,
 * forwarding to the host's resolvers. With --allow-host it answers only those names (every
 * other one is NXDOMAIN) and puts their A records into the VM's nftables set (--nftset), the
 * only addresses the egress filter then lets through. dnsmasq's domain rule: "/NAME/" matches
 * NAME and its subdomains, "/ *.NAME/" only its subdomains.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>

#include "net/net.h"

size_t hc_net_resolvers_parse(const char *text, struct in_addr *ret, size_t max)
{
	size_t n = 0;

	for (const char *line = text; line && *line && n < max;) {
		char word[16], addr[64];

		if (sscanf(line, " %15s %63s", word, addr) == 2 && hc_streq(word, "nameserver") &&
		    inet_pton(AF_INET, addr, &ret[n]) == 1)
			n++;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return n;
}

int hc_net_host_check(const char *name, struct hc_error *err)
{
	const char *p = name;
	size_t len, labels = 0;

	if (!name)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "--allow-host: no name");
	if (hc_startswith(p, "*."))
		p += 2;
	len = strlen(p);
	if (len == 0 || len > HC_NET_NAME_MAX)
		goto bad;
	for (const char *l = p; *l;) {
		size_t n = strcspn(l, ".");

		if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
			goto bad;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)l[i]) && l[i] != '-')
				goto bad;
		labels++;
		l += n;
		if (*l == '.' && !*++l)
			goto bad; /* a trailing dot */
	}
	/* At least a dot, and not an IP literal: the last label is not all digits. */
	if (labels < 2 || strspn(strrchr(p, '.') + 1, "0123456789") == strlen(strrchr(p, '.') + 1))
		goto bad;
	return 0;
bad:
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
			     "--allow-host '%s': not a hostname (want name.domain or *.domain)",
			     name);
}

struct argv_b {
	char **v;
	size_t n;
	int err;
};

static void add(struct argv_b *b, const char *fmt, ...) _printf_(2, 3);
static void add(struct argv_b *b, const char *fmt, ...)
{
	va_list ap;
	char **v;
	char *s;

	if (b->err)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	v = s ? realloc(b->v, (b->n + 2) * sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		b->err = -ENOMEM;
		return;
	}
	b->v = v;
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

void hc_net_argv_free(char **argv)
{
	for (char **p = argv; p && *p; p++)
		free(*p);
	free(argv);
}

int hc_net_dnsmasq_argv(const struct hc_net *net, char ***ret)
{
	struct argv_b b = {0};
	char gw[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &net->lease.gw, gw, sizeof(gw));
	add(&b, "dnsmasq");
	/* Ours only: no config file, no /etc/hosts, no resolv.conf polling, no pid file, no
	 * DHCP; bound to the gateway address alone, so instances never meet. */
	add(&b, "--keep-in-foreground");
	add(&b, "--conf-file=/dev/null");
	add(&b, "--no-hosts");
	add(&b, "--no-resolv");
	add(&b, "--no-poll");
	add(&b, "--pid-file");
	add(&b, "--bind-interfaces");
	add(&b, "--listen-address=%s", gw);
	add(&b, "--port=53");
	add(&b, "--log-facility=-");
	add(&b, "--cache-size=256");
	if (!net->opts.n_allow_hosts) {
		for (size_t i = 0; i < net->n_dns; i++)
			add(&b, "--server=%s", inet_ntoa(net->dns[i]));
	} else {
		for (size_t h = 0; h < net->opts.n_allow_hosts; h++) {
			const char *name = net->opts.allow_hosts[h];

			for (size_t i = 0; i < net->n_dns; i++)
				add(&b, "--server=/%s/%s", name, inet_ntoa(net->dns[i]));
			add(&b, "--nftset=/%s/4#inet#hotcell#allow_%s", name, net->lease.id);
		}
		/* Every other name: NXDOMAIN (the more specific /NAME/ entries win). */
		add(&b, "--address=/#/");
	}
	if (b.err) {
		hc_net_argv_free(b.v);
		return b.err;
	}
	*ret = b.v;
	return 0;
}
