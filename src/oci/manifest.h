/* SPDX-License-Identifier: MIT */
/*
 * Image manifests, indexes and configs, parsed from a buffer (registry replies, store blobs,
 * archives alike). The documents followed:
 *  - OCI image-spec v1.1: manifest.md, image-index.md, descriptor.md, config.md,
 *    media-types.md;
 *  - Docker Image Manifest V2 Schema 2 (distribution docs/spec/manifest-v2-2.md), including the
 *    manifest list.
 * Everything is bounded: the buffer size, the number of descriptors, every string. Documents
 * with duplicate keys are rejected (two readers must not see two different images).
 */
#pragma once

#include "core/error.h"
#include "oci/digest.h"
#include "oci/store.h"

/* Media types not already named in store.h. */
#define HC_OCI_MT_LAYER_NONDIST "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define HC_OCI_MT_LAYER_NONDIST_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define HC_OCI_MT_LAYER_NONDIST_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define HC_DOCKER_MT_LAYER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define HC_DOCKER_MT_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define HC_DOCKER_MT_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* The Accept header a client sends for a manifest: every type we can read. */
#define HC_OCI_MANIFEST_ACCEPT                                                                     \
	HC_OCI_MT_INDEX ", " HC_DOCKER_MT_LIST ", " HC_OCI_MT_MANIFEST ", " HC_DOCKER_MT_MANIFEST

/* Bounds on what one document may list. */
#define HC_OCI_INDEX_ENTRIES_MAX 1024
#define HC_OCI_LAYERS_MAX 1024

struct hc_oci_platform {
	char os[32];
	char arch[32];
	char variant[32]; /* "" when none */
};

struct hc_oci_desc {
	char media_type[128];
	char digest[HC_DIGEST_SIZE];
	uint64_t size;
	bool has_platform;
	struct hc_oci_platform platform; /* index entries */
	char *ref_name;			 /* HC_OCI_REF_NAME annotation, or NULL */
};

enum hc_oci_manifest_kind {
	HC_OCI_KIND_INDEX,    /* OCI image index or Docker manifest list */
	HC_OCI_KIND_MANIFEST, /* OCI image manifest or Docker schema 2 manifest */
};

struct hc_oci_manifest {
	enum hc_oci_manifest_kind kind;
	char media_type[128]; /* the document's type, from its mediaType or the transport's */
	/* HC_OCI_KIND_INDEX */
	struct hc_oci_desc *manifests;
	size_t n_manifests;
	/* HC_OCI_KIND_MANIFEST */
	struct hc_oci_desc config;
	struct hc_oci_desc *layers;
	size_t n_layers;
};

/* True for the four manifest/index media types we read. */
bool hc_oci_media_type_is_manifest(const char *mt);
bool hc_oci_media_type_is_index(const char *mt);
/* True for the layer media types the unpacker understands (tar, gzip, zstd; OCI and Docker). */
bool hc_oci_media_type_is_layer(const char *mt);

/*
 * Parses a manifest or an index. content_type is the type the transport announced (an HTTP
 * Content-Type, a descriptor's mediaType) or NULL; when the document carries a mediaType too
 * they must agree. A document that is neither (schema 1, an artifact with both "manifests"
 * and "layers", an unknown type) is -EPROTONOSUPPORT / -EBADMSG with a message saying why.
 * Free with hc_oci_manifest_free, also after a failure.
 */
int hc_oci_manifest_parse(const void *data, size_t len, const char *content_type,
			  struct hc_oci_manifest *ret, struct hc_error *err) _must_check_;
void hc_oci_manifest_free(struct hc_oci_manifest *m);

/* "os/arch[/variant]", normalised the way containerd's platforms package does
 * (x86_64 -> amd64, aarch64 -> arm64, arm64/v8 -> arm64, armhf -> arm/v7). */
int hc_oci_platform_parse(const char *s, struct hc_oci_platform *ret,
			  struct hc_error *err) _must_check_;
/* The host's platform from uname(2): linux/amd64, linux/arm64, ... */
void hc_oci_platform_host(struct hc_oci_platform *ret);
/* "os/arch[/variant]" into buf. */
void hc_oci_platform_format(const struct hc_oci_platform *p, char *buf, size_t n);
/* Picks the manifest for platform p from an index, or a nested index for it (the caller fetches
 * that and selects again). An index with a single entry that names no platform is taken as is.
 * -ENOENT listing the platforms on offer when none matches. */
int hc_oci_index_select(const struct hc_oci_manifest *index, const struct hc_oci_platform *p,
			const struct hc_oci_desc **ret, struct hc_error *err) _must_check_;

/* What a run needs of an image config (config.md: "config" object, "rootfs", "created"). */
struct hc_oci_config {
	char *created; /* RFC 3339, or NULL */
	struct hc_oci_platform platform;
	char **entrypoint; /* NULL-terminated vectors; NULL when absent */
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char **env;
	size_t n_env;
	char *workdir; /* NULL when absent or empty */
	char *user;
	char **diff_ids; /* rootfs.diff_ids */
	size_t n_diff_ids;
};

/* On failure *ret is left zeroed (nothing to free). */
int hc_oci_config_parse(const void *data, size_t len, struct hc_oci_config *ret,
			struct hc_error *err) _must_check_;
void hc_oci_config_free(struct hc_oci_config *c);
