/* SPDX-License-Identifier: MIT */
/*
 * The guest's side of networking (docs/protocol.md, boot contract): eth0 gets the address,
 * prefix, MTU and default route from the kernel command line — never DHCP — through the
 * classic ioctls (a static binary, no libraries); /etc/resolv.conf and /etc/hosts are written
 * into the overlay (the image underneath is never touched).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "guest/guest.h"
#include "proto/boot.h"

static int fail(char *msg, size_t msglen, const char *what)
{
	int e = errno;

	snprintf(msg, msglen, "network: %s: %s", what, strerror(e));
	return -e;
}

static void set_sin(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr;
}

/* virtio-net probes with the rest of the devices; a bounded wait covers a slow probe. */
static bool wait_iface(int fd, struct ifreq *ifr)
{
	for (int waited = 0; waited < HC_BOOT_DEVICE_WAIT_MS; waited += 10) {
		if (ioctl(fd, SIOCGIFFLAGS, ifr) == 0)
			return true;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return false;
}

/* Replaces path (a symlink into /run, say) with a regular file holding text. */
static int write_etc(const char *path, const char *text)
{
	char tmp[64];
	int fd;
	size_t n = strlen(text);

	mkdir("/etc", 0755);
	snprintf(tmp, sizeof(tmp), "%s.hotcell", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n) {
		int e = -errno;

		close(fd);
		unlink(tmp);
		return e;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = -errno;

		unlink(tmp);
		return e;
	}
	return 0;
}

/* eth0's address, netmask, MTU (0: left as is), up, and the default route via gw (0: none);
 * ifr names the interface. Both the boot's setup and a NETCONF after a restore end here. */
static int set_addr(int fd, struct ifreq *ifr, uint32_t ip, unsigned prefix, unsigned mtu,
		    uint32_t gw, char *msg, size_t msglen)
{
	struct rtentry rt = {0};

	set_sin(&ifr->ifr_addr, ip);
	if (ioctl(fd, SIOCSIFADDR, ifr) < 0)
		return fail(msg, msglen, "set the address of " HC_BOOT_NET_IFACE);
	set_sin(&ifr->ifr_netmask, prefix ? htonl(0xffffffffu << (32 - prefix)) : 0);
	if (ioctl(fd, SIOCSIFNETMASK, ifr) < 0)
		return fail(msg, msglen, "set the netmask of " HC_BOOT_NET_IFACE);
	if (mtu) {
		ifr->ifr_mtu = (int)mtu;
		if (ioctl(fd, SIOCSIFMTU, ifr) < 0)
			return fail(msg, msglen, "set the MTU of " HC_BOOT_NET_IFACE);
	}
	if (ioctl(fd, SIOCGIFFLAGS, ifr) < 0)
		return fail(msg, msglen, "flags of " HC_BOOT_NET_IFACE);
	ifr->ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, ifr) < 0)
		return fail(msg, msglen, "bring " HC_BOOT_NET_IFACE " up");
	if (!gw)
		return 0;
	set_sin(&rt.rt_dst, 0);
	set_sin(&rt.rt_genmask, 0);
	set_sin(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = (char *)HC_BOOT_NET_IFACE;
	if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		return fail(msg, msglen, "add the default route");
	return 0;
}

int guest_net_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	struct ifreq ifr = {0};
	char text[512], ip[INET_ADDRSTRLEN], dns[INET_ADDRSTRLEN];
	_cleanup_close_ int fd = -1;
	char hostname[65] = "hotcell";

	if (!cfg->ip)
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(msg, msglen, "socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", HC_BOOT_NET_IFACE);
	if (!wait_iface(fd, &ifr))
		return fail(msg, msglen, HC_BOOT_NET_IFACE " did not appear");
	int r = set_addr(fd, &ifr, cfg->ip, cfg->prefix, cfg->mtu, cfg->gw, msg, msglen);
	if (r < 0)
		return r;
	inet_ntop(AF_INET, &cfg->ip, ip, sizeof(ip));
	if (gethostname(hostname, sizeof(hostname) - 1) < 0)
		snprintf(hostname, sizeof(hostname), "hotcell");
	snprintf(text, sizeof(text),
		 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", ip,
		 hostname);
	if (write_etc("/etc/hosts", text) < 0)
		return fail(msg, msglen, "write /etc/hosts");
	if (cfg->dns) {
		inet_ntop(AF_INET, &cfg->dns, dns, sizeof(dns));
		snprintf(text, sizeof(text), "nameserver %s\n", dns);
		if (write_etc("/etc/resolv.conf", text) < 0)
			return fail(msg, msglen, "write /etc/resolv.conf");
	}
	guest_dbg("network: %s/%u via %s mtu %u", ip, cfg->prefix, cfg->gw ? "gateway" : "none",
		  cfg->mtu);
	return 0;
}

int guest_hosts_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	static const char deflt[] = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
				    "ip6-loopback\n";
	char text[16384];
	size_t n = 0;
	int fd, r;

	if (!cfg->nhosts)
		return 0;
	fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t k;

		/* What does not fit is dropped: room is kept for the added lines. */
		while (n < sizeof(text) / 2 && (k = read(fd, text + n, sizeof(text) / 2 - n)) > 0)
			n += (size_t)k;
		close(fd);
		if (memchr(text, 0, n))
			n = 0;
	}
	if (n == 0) {
		memcpy(text, deflt, sizeof(deflt) - 1);
		n = sizeof(deflt) - 1;
	}
	if (text[n - 1] != '\n')
		text[n++] = '\n';
	for (size_t i = 0; i < cfg->nhosts; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\t%s\n", cfg->hosts[i].ip,
				      cfg->hosts[i].name);
	text[n] = 0;
	r = write_etc("/etc/hosts", text);
	if (r < 0) {
		errno = -r;
		return fail(msg, msglen, "write /etc/hosts");
	}
	guest_dbg("/etc/hosts: %zu added", cfg->nhosts);
	return 0;
}

int guest_dns_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	char text[256];
	size_t n = 0;
	int r;

	if (!cfg->nnameservers)
		return 0;
	for (size_t i = 0; i < cfg->nnameservers; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "nameserver %s\n",
				      cfg->nameservers[i]);
	r = write_etc("/etc/resolv.conf", text);
	if (r < 0) {
		errno = -r;
		return fail(msg, msglen, "write /etc/resolv.conf");
	}
	guest_dbg("/etc/resolv.conf: %zu nameservers", cfg->nnameservers);
	return 0;
}

/* The default route's gateway on eth0 from /proc/net/route (network order), 0 when none. */
static uint32_t default_gateway(void)
{
	char line[256], ifname[32];
	unsigned dst, gw, flags, mask;
	uint32_t ret = 0;
	FILE *f = fopen("/proc/net/route", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %x %x %x %*u %*u %*u %x", ifname, &dst, &gw, &flags,
			   &mask) == 5 &&
		    hc_streq(ifname, HC_BOOT_NET_IFACE) && dst == 0 && mask == 0 &&
		    (flags & RTF_GATEWAY)) {
			ret = gw; /* printed as the address's bytes in host order: network order */
			break;
		}
	fclose(f);
	return ret;
}

/* Rewrites path's lines whose word after `key` (the first word when key is NULL) is `from`,
 * to `to`; a file that is missing or has no such line is left alone. */
static int replace_word(const char *path, const char *key, const char *from, const char *to)
{
	char text[16384], out[16384 + 1024];
	size_t n = 0, o = 0;
	bool changed = false;
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	while (n < sizeof(text) - 1 && (k = read(fd, text + n, sizeof(text) - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	text[n] = 0;
	if (memchr(text, 0, n))
		return 0;
	for (char *line = text; *line && o < sizeof(out) - 1;) {
		char *nl = strchr(line, '\n'), *w = line;
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line),
		       klen = key ? strlen(key) : 0, flen = strlen(from);

		w += strspn(w, " \t");
		if (key && strncmp(w, key, klen) == 0 && (w[klen] == ' ' || w[klen] == '\t'))
			w += klen + strspn(w + klen, " \t");
		else if (key)
			w = NULL;
		if (w && strncmp(w, from, flen) == 0 && (!w[flen] || strchr(" \t\n", w[flen]))) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s%s%.*s",
					      (int)(w - line), line, to,
					      (int)(len - (size_t)(w - line) - flen), w + flen);
			changed = true;
		} else {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s", (int)len, line);
		}
		line += len;
	}
	if (!changed)
		return 0;
	out[o < sizeof(out) ? o : sizeof(out) - 1] = 0;
	return write_etc(path, out);
}

int guest_net_reconfigure(const struct hc_proto_netconf *n, char *msg, size_t msglen)
{
	struct ifreq ifr = {0};
	struct rtentry rt = {0};
	char old_ip[INET_ADDRSTRLEN] = "", new_ip[INET_ADDRSTRLEN], old_gw[INET_ADDRSTRLEN] = "",
	     new_dns[INET_ADDRSTRLEN];
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint32_t gw = default_gateway();
	int r;

	if (fd < 0)
		return fail(msg, msglen, "socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", HC_BOOT_NET_IFACE);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return fail(msg, msglen, "the restored guest has no " HC_BOOT_NET_IFACE);
	if (ioctl(fd, SIOCGIFADDR, &ifr) == 0)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, old_ip,
			  sizeof(old_ip));
	if (gw) {
		inet_ntop(AF_INET, &gw, old_gw, sizeof(old_gw));
		set_sin(&rt.rt_dst, 0);
		set_sin(&rt.rt_genmask, 0);
		rt.rt_flags = RTF_UP;
		rt.rt_dev = (char *)HC_BOOT_NET_IFACE;
		if (ioctl(fd, SIOCDELRT, &rt) < 0 && errno != ESRCH)
			return fail(msg, msglen, "remove the old default route");
	}
	/* virtio-net changes its address live (the VMM learns it through the control queue). */
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, n->mac, sizeof(n->mac));
	if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0)
		return fail(msg, msglen, "set the MAC address of " HC_BOOT_NET_IFACE);
	r = set_addr(fd, &ifr, n->addr, n->prefix, n->mtu, n->gateway, msg, msglen);
	if (r < 0)
		return r;
	inet_ntop(AF_INET, &n->addr, new_ip, sizeof(new_ip));
	if (old_ip[0] && (r = replace_word("/etc/hosts", NULL, old_ip, new_ip)) < 0) {
		errno = -r;
		return fail(msg, msglen, "rewrite /etc/hosts");
	}
	inet_ntop(AF_INET, &n->dns, new_dns, sizeof(new_dns));
	if (old_gw[0] && n->dns &&
	    (r = replace_word("/etc/resolv.conf", "nameserver", old_gw, new_dns)) < 0) {
		errno = -r;
		return fail(msg, msglen, "rewrite /etc/resolv.conf");
	}
	guest_dbg("network: now %s/%u (was %s)", new_ip, n->prefix, old_ip[0] ? old_ip : "none");
	return 0;
}
