/* SPDX-License-Identifier: MIT */
/*
 * The VM's TAP: made persistent through /dev/net/tun (the only way to make one), so a VMM
 * that opens it by name (Firecracker's host_dev_name, Cloud Hypervisor's tap) and one that
 * gets an fd (QEMU's -netdev tap,fd=N) see the same device; owned by hotcell's user, so no
 * other can attach it (a jailed Firecracker's uid is made its owner); its address and state
 * through rtnetlink with libmnl; deleted by name (RTM_DELLINK), which is also how a dead run's
 * TAP is reclaimed.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <time.h>

#include "net/net.h"

/* Opens /dev/net/tun attached to the TAP called name (making it when it does not exist). */
static int tun_open(const char *name, struct hc_error *err)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return hc_error_setk(err, -errno, HC_EK_BACKEND,
				     "networking needs /dev/net/tun: %s", strerror(errno));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		if (errno == EPERM)
			return hc_error_setk(
				err, -EPERM, HC_EK_BACKEND,
				"networking needs CAP_NET_ADMIN (run hotcell as root)");
		return hc_error_errno(err, -errno, "TAP %s", name);
	}
	return hc_steal_fd(&fd);
}

int hc_net_tap_open(const struct hc_net *net, struct hc_error *err)
{
	return tun_open(net->lease.tap, err);
}

int hc_net_tap_set_owner(const char *tap, uid_t uid, gid_t gid, struct hc_error *err)
{
	_cleanup_close_ int fd = tun_open(tap, err);

	if (fd < 0)
		return fd;
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)
		return hc_error_errno(err, -errno, "TAP %s: owner", tap);
	return 0;
}

/* One rtnetlink request, acknowledged. */
static int rtnl_talk(struct nlmsghdr *nlh, struct hc_error *err, const char *what)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	unsigned seq = nlh->nlmsg_seq, portid;
	ssize_t n;
	int r = 0;

	if (!nl)
		return hc_error_errno(err, -errno, "%s: netlink", what);
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = hc_error_errno(err, -errno, "%s: netlink bind", what);
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = hc_error_errno(err, -errno, "%s: netlink send", what);
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
		r = hc_error_errno(err, -errno, "%s", what);
out:
	mnl_socket_close(nl);
	return r;
}

static struct nlmsghdr *msg_new(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = (unsigned)time(NULL);
	return nlh;
}

static int link_up(const char *name, unsigned mtu, struct hc_error *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = msg_new(buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_change = IFF_UP;
	ifm->ifi_flags = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return rtnl_talk(nlh, err, "bring the TAP up");
}

static int addr_add(const char *name, struct in_addr a, unsigned prefix, struct hc_error *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = msg_new(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	unsigned idx = if_nametoindex(name);

	if (!idx)
		return hc_error_errno(err, -errno, "TAP %s", name);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = idx;
	mnl_attr_put_u32(nlh, IFA_LOCAL, a.s_addr);
	mnl_attr_put_u32(nlh, IFA_ADDRESS, a.s_addr);
	return rtnl_talk(nlh, err, "address the TAP");
}

/* Deletes the link called name; 0 also when there is none. */
int hc_net_link_delete(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct hc_error err = {0};
	int r;

	if (!if_nametoindex(name))
		return 0;
	nlh = msg_new(buf, RTM_DELLINK, 0);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	r = rtnl_talk(nlh, &err, "delete the TAP");
	return r == -ENODEV ? 0 : r;
}

/* Makes the persistent TAP with the gateway address on it, up. */
int hc_net_link_create(const struct hc_net_lease *l, struct hc_error *err)
{
	_cleanup_close_ int fd = tun_open(l->tap, err);
	int r;

	if (fd < 0)
		return fd;
	if (ioctl(fd, TUNSETPERSIST, 1) < 0)
		return hc_error_errno(err, -errno, "TAP %s: persist", l->tap);
	/* A TAP without an owner is attachable by anyone who can open /dev/net/tun (often mode
	 * 0666) while no VMM holds it: ours from birth, handed on only to a jailed Firecracker's
	 * uid (hc_net_tap_set_owner). */
	if (ioctl(fd, TUNSETOWNER, (unsigned long)geteuid()) < 0 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)getegid()) < 0) {
		r = hc_error_errno(err, -errno, "TAP %s: owner", l->tap);
		hc_net_link_delete(l->tap);
		return r;
	}
	r = link_up(l->tap, HC_NET_MTU, err);
	if (r == 0)
		r = addr_add(l->tap, l->gw, 30, err);
	if (r < 0)
		hc_net_link_delete(l->tap);
	return r;
}
