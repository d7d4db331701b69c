/* SPDX-License-Identifier: MIT */
/*
 * The volume key of the boot contract (docs/protocol.md, "Kernel command line"): the kernel
 * splits its command line on blanks and hotcell.vol uses ':' as a separator, so the guest path
 * travels percent-encoded. Hosts encode with hc_boot_volume_append, hotcell-init decodes with
 * hc_boot_volume_parse: one definition on each side of the wire.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/boot.h"

static bool path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		if (!e)
			break;
		s = e + 1;
	}
	return true;
}

static bool plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("/._+,=@~-", c) != NULL);
}

int hc_boot_volume_append(struct hc_buf *b, unsigned idx, const char *p, bool ro)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t old = b->len;
	int r;

	if (!p || !path_ok(p))
		return -EINVAL;
	r = hc_buf_printf(b, " %s=%s%u:", HC_BOOT_KEY_VOLUME, HC_BOOT_TAG_VOLUME_PREFIX, idx);
	for (const unsigned char *s = (const unsigned char *)p; r >= 0 && *s; s++) {
		char enc[3] = {'%', hex[*s >> 4], hex[*s & 15]};

		r = plain(*s) ? hc_buf_append(b, s, 1) : hc_buf_append(b, enc, 3);
	}
	if (r >= 0 && ro)
		r = hc_buf_puts(b, ":ro");
	if (r < 0) {
		b->len = old;
		if (b->data)
			b->data[old] = 0;
	}
	return r;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool tag_ok(const char *s, size_t n)
{
	/* virtio-fs tags are at most 36 bytes (virtio spec, "File System Device"). */
	if (n == 0 || n > 36)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

int hc_boot_volume_parse(const char *v, char *tag, size_t taglen, char *path, size_t pathlen,
			 bool *ro)
{
	const char *colon = strchr(v, ':'), *src, *end;
	size_t o = 0;

	if (!colon || !tag_ok(v, (size_t)(colon - v)) || (size_t)(colon - v) >= taglen)
		return -EINVAL;
	memcpy(tag, v, (size_t)(colon - v));
	tag[colon - v] = 0;
	src = colon + 1;
	end = src + strlen(src);
	*ro = false;
	if (end - src > 3 && (strcmp(end - 3, ":ro") == 0 || strcmp(end - 3, ":rw") == 0)) {
		*ro = end[-1] == 'o';
		end -= 3;
	}
	for (const char *s = src; s < end; s++) {
		char c = *s;

		if (c == '%') {
			int hi, lo;

			if (end - s < 3)
				return -EINVAL;
			hi = hexval(s[1]);
			lo = hexval(s[2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			s += 2;
		}
		if (o + 1 >= pathlen)
			return -EINVAL;
		path[o++] = c;
	}
	path[o] = 0;
	return path_ok(path) ? 0 : -EINVAL;
}
