/* SPDX-License-Identifier: MIT */
/* The run options table: the getopt loop (CLI) and the JSON object (server) set the same
 * fields through the same setters, and refuse the same bad values. */
#include <errno.h>
#include <getopt.h>
#include <sys/utsname.h>

#include "core/util.h"
#include "lib/runopts.h"
#include "test.h"

static int extra_seen;

/* getopt wants char **: writable copies, freed with freeargv (getopt only permutes them). */
static char **mkargv(const char *const *in)
{
	size_t n = 0;
	char **v;

	while (in[n])
		n++;
	v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		v[i] = strdup(in[i]);
	return v;
}

static void freeargv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int on_extra(int id, const char *arg, void *userdata, struct hc_error *err)
{
	extra_seen = id;
	*(const char **)userdata = arg;
	return 0;
}

TEST(getopt_sets_fields)
{
	const char *const args[] = {"run", "--cpus", "2",      "--memory=128", "-e",	"A=1",
				    "-eB", "-w",     "/tmp",   "--channel",    "vsock", "--json",
				    "x",   "-i",     "alpine", "--cpus",       "9",	NULL};
	struct hc_runopt_extra extra[] = {{"json", required_argument, 0, 7}};
	struct hc_runopts ro;
	struct hc_error err = {0};
	const char *name = NULL;
	char **argv = mkargv(args);
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 17, argv, extra, 1, on_extra, &name, &err);
	ASSERT_OK(r, &err);
	ASSERT_EQ_STR(argv[r], "alpine"); /* options end at IMAGE */
	ASSERT_EQ_INT(ro.o.cpus, 2);
	ASSERT_EQ_INT(ro.o.memory_mib, 128);
	ASSERT_EQ_INT(ro.o.n_env, 2);
	ASSERT_EQ_STR(ro.o.env[1], "B");
	ASSERT_EQ_STR(ro.o.workdir, "/tmp");
	ASSERT_EQ_INT(ro.o.channel, HC_CHANNEL_VSOCK);
	ASSERT_TRUE(ro.o.interactive);
	ASSERT_EQ_INT(extra_seen, 7);
	ASSERT_EQ_STR(name, "x");
	hc_runopts_free(&ro);
	freeargv(argv);
}

TEST(getopt_errors)
{
	const char *const a1_[] = {"run", "--cpus", "zero", "img", NULL};
	const char *const a2_[] = {"run", "--bogus", "img", NULL};
	const char *const a3_[] = {"vm create", "--timeout", "3", "img",
				   NULL}; /* run-only option */
	struct hc_runopts ro;
	struct hc_error err = {0};
	char **a1 = mkargv(a1_), **a2 = mkargv(a2_), **a3 = mkargv(a3_);

	hc_runopts_init(&ro);
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 4, a1, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "--cpus: invalid value 'zero'") != NULL);
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 3, a2, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "unrecognized option '--bogus'") != NULL);
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_VM, 4, a3, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "unrecognized option '--timeout'") != NULL);
	hc_runopts_free(&ro);
	freeargv(a1);
	freeargv(a2);
	freeargv(a3);
}

TEST(json_sets_same_fields)
{
	json_error_t je;
	json_t *p =
		json_loads("{\"image\":\"alpine\",\"cmd\":[\"echo\",\"hi\"],\"cpus\":2,"
			   "\"boot_timeout\":1.5,\"env\":{\"A\":\"1\"},\"publish\":[\"80:8080\"],"
			   "\"rootfs-mode\":\"block\",\"jailer\":true,\"interactive\":false,"
			   "\"name\":\"skipped\"}",
			   0, &je);
	const char *skip[] = {"name", NULL};
	struct hc_runopts ro;
	struct hc_error err = {0};

	ASSERT_TRUE(p != NULL);
	hc_runopts_init(&ro);
	ASSERT_OK(hc_runopts_from_json(&ro, HC_RUNOPT_RUN, p, skip, &err), &err);
	json_decref(p);
	ASSERT_EQ_STR(ro.o.image, "alpine");
	ASSERT_EQ_INT(ro.o.n_cmd, 2);
	ASSERT_EQ_STR(ro.o.cmd[1], "hi");
	ASSERT_EQ_INT(ro.o.cpus, 2);
	ASSERT_TRUE(ro.o.boot_timeout_s == 1.5);
	ASSERT_EQ_STR(ro.o.env[0], "A=1");
	ASSERT_EQ_INT(ro.o.ports[0].guest, 8080);
	ASSERT_EQ_INT(ro.o.rootfs_mode, HC_ROOTFS_BLOCK);
	ASSERT_TRUE(ro.o.jailer);
	ASSERT_TRUE(!ro.o.interactive);
	hc_runopts_free(&ro);
}

TEST(json_errors)
{
	static const char *const bad[] = {
		"{\"cpus\":0}",
		"{\"cpus\":\"x\"}",
		"{\"memory\":true}",
		"{\"bogus\":1}",
		"{\"jailer\":\"yes\"}",
		"{\"cmd\":[1]}",
		"{\"env\":{\"=\":\"x\"}}",
		"[]",
		"{\"timeout\":-1}",
		"{\"publish\":[\"1\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *p = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		struct hc_runopts ro;
		struct hc_error err = {0};
		int r;

		hc_runopts_init(&ro);
		r = hc_runopts_from_json(&ro, HC_RUNOPT_RUN, p, NULL, &err);
		json_decref(p);
		hc_runopts_free(&ro);
		if (r >= 0)
			FAILF("%s accepted", bad[i]);
		if (!err.message[0])
			FAILF("%s: no message", bad[i]);
	}
}

/* What vm create writes into create.json and the supervisor reads back: the same options. */
TEST(json_roundtrip)
{
	const char *const args[] = {"vm create", "--cpus",	  "2",	   "-e",	"A=1",
				    "-w",	 "/srv",	  "-u",	   "1000:1000", "--channel",
				    "vsock",	 "--rootfs-mode", "block", "-p",	"8080:80",
				    "--jailer",	 "img",		  NULL};
	char **argv = mkargv(args);
	struct hc_runopts a, b;
	struct hc_error err = {0};
	json_t *j;
	int r;

	hc_runopts_init(&a);
	hc_runopts_init(&b);
	r = hc_runopts_getopt(&a, HC_RUNOPT_VM, 16, argv, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_OK(hc_runopts_set_image(&a, argv[r], &err), &err);
	j = hc_runopts_to_json(&a.o, HC_RUNOPT_VM);
	ASSERT_TRUE(j != NULL);
	ASSERT_OK(hc_runopts_from_json(&b, HC_RUNOPT_VM, j, NULL, &err), &err);
	json_decref(j);
	ASSERT_EQ_STR(b.o.image, "img");
	ASSERT_EQ_INT(b.o.cpus, 2);
	ASSERT_EQ_STR(b.o.env[0], "A=1");
	ASSERT_EQ_STR(b.o.workdir, "/srv");
	ASSERT_EQ_STR(b.o.user, "1000:1000");
	ASSERT_EQ_INT(b.o.channel, HC_CHANNEL_VSOCK);
	ASSERT_EQ_INT(b.o.rootfs_mode, HC_ROOTFS_BLOCK);
	ASSERT_EQ_INT(b.o.ports[0].host, 8080);
	ASSERT_TRUE(b.o.jailer);
	hc_runopts_free(&a);
	hc_runopts_free(&b);
	freeargv(argv);
}

TEST(tty_and_timeout_zero)
{
	const char *const args[] = {"run", "-it", "--timeout", "0", "alpine", "sh", NULL};
	struct hc_runopts ro;
	struct hc_error err = {0};
	char **argv = mkargv(args);
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 6, argv, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_EQ_STR(argv[r], "alpine");
	ASSERT_TRUE(ro.o.interactive);
	ASSERT_TRUE(ro.o.tty);
	ASSERT_TRUE(ro.o.timeout_s < 0); /* --timeout 0: none (podman) */
	json_t *j = hc_runopts_to_json(&ro.o, HC_RUNOPT_RUN);
	ASSERT_TRUE(j && json_integer_value(json_object_get(j, "timeout")) == 0 &&
		    json_object_get(j, "timeout"));
	json_decref(j);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "timeout", "2.5", &err), &err);
	ASSERT_TRUE(ro.o.timeout_s == 2.5);
	/* -t is run's: a persistent VM's commands get their terminal per exec. */
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_VM, "tty", NULL, &err), -EINVAL);
	hc_runopts_free(&ro);
	freeargv(argv);
}

TEST(memory_units_and_rm)
{
	static const struct {
		const char *v;
		unsigned mib;
	} ok[] = {{"512m", 512},      {"1g", 1024},	 {"1G", 1024}, {"1024k", 1},
		  {"512mb", 512},     {"2GB", 2048},	 {"256", 256}, /* hotcell's MiB */
		  {"536870912", 512}, {"33554433b", 33},	       /* bytes, rounded up */
		  {"1048576", 1}};
	static const char *const refused[] = {"", "m", "-1", "12x", "1gg", "1.5g", "1bb", "31"};
	struct hc_runopts ro;
	struct hc_error err = {0};

	hc_runopts_init(&ro);
	for (size_t i = 0; i < HC_ARRAY_SIZE(ok); i++) {
		int r = hc_runopts_set(&ro, HC_RUNOPT_RUN, "memory", ok[i].v, &err);

		if (ok[i].mib < 32) {
			/* Valid syntax, below the floor: the message says what the number meant. */
			ASSERT_EQ_INT(r, -EINVAL);
			ASSERT_TRUE(strstr(err.message, "at least 32 MiB") != NULL);
			continue;
		}
		ASSERT_OK(r, &err);
		ASSERT_EQ_INT(ro.o.memory_mib, ok[i].mib);
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(refused); i++) {
		ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "memory", refused[i], &err),
			      -EINVAL);
		ASSERT_TRUE(strncmp(err.message, "--memory: ", 10) == 0);
	}
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "rm", NULL, &err), &err);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_VM, "rm", NULL, &err), -EINVAL);
	hc_runopts_free(&ro);
}

/* podman's --env-file: KEY=VALUE lines, # comments, blank lines, a bare KEY from the host
 * (dropped when the host has none); an error names the file and the line. */
TEST(env_file)
{
	char path[] = "/tmp/hc-test-envfile-XXXXXX";
	int fd = mkstemp(path);
	struct hc_runopts ro;
	struct hc_error err = {0};
	FILE *f;

	ASSERT_TRUE(fd >= 0);
	f = fdopen(fd, "w");
	ASSERT_TRUE(f != NULL);
	fputs("# a comment\n\nA=1\n  # indented comment\nB=x=y z\r\nHC_TEST_HOSTVAR\n"
	      "HC_TEST_UNSET_VAR\nC=\n",
	      f);
	fclose(f);
	setenv("HC_TEST_HOSTVAR", "from host", 1);
	unsetenv("HC_TEST_UNSET_VAR");
	hc_runopts_init(&ro);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "env", "Z=0", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "env-file", path, &err), &err);
	ASSERT_EQ_INT(ro.o.n_env, 5);
	ASSERT_EQ_STR(ro.o.env[0], "Z=0");
	ASSERT_EQ_STR(ro.o.env[1], "A=1");
	ASSERT_EQ_STR(ro.o.env[2], "B=x=y z");
	ASSERT_EQ_STR(ro.o.env[3], "HC_TEST_HOSTVAR=from host");
	ASSERT_EQ_STR(ro.o.env[4], "C=");
	hc_runopts_free(&ro);

	/* Bad lines: the message names FILE:LINE. */
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs("A=1\n# c\n=oops\n", f);
	fclose(f);
	hc_runopts_init(&ro);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_VM, "env-file", path, &err), -EINVAL);
	{
		char want[96];

		snprintf(want, sizeof(want), "--env-file %s:3: ", path);
		ASSERT_TRUE(strstr(err.message, want) != NULL);
	}
	hc_runopts_free(&ro);
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs("BAD KEY=1\n", f);
	fclose(f);
	hc_runopts_init(&ro);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "env-file", path, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, ":1: variable name 'BAD KEY' contains blanks") != NULL);
	hc_runopts_free(&ro);
	unlink(path);
	hc_runopts_init(&ro);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "env-file", path, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.message, path) != NULL);
	hc_runopts_free(&ro);
	/* From JSON too (the server's params). */
	json_t *p = json_pack("{s:s}", "env_file", "/nonexistent/env");
	hc_runopts_init(&ro);
	ASSERT_ERR(hc_runopts_from_json(&ro, HC_RUNOPT_RUN, p, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "--env-file /nonexistent/env: ") != NULL);
	json_decref(p);
	hc_runopts_free(&ro);
}

/* podman's -h is --hostname; --name is accepted on run; -d, --read-only, --tmpfs are
 * refused with their reason; an unknown podman flag is named. */
TEST(podman_flags)
{
	const char *const a1_[] = {"run", "-h", "box1", "--name", "web_1", "img", NULL};
	const char *const a2_[] = {"run", "-d", "img", NULL};
	const char *const a3_[] = {"run", "--privileged", "img", NULL};
	const char *const a4_[] = {"vm create", "-h", "vmhost", "img", NULL};
	char **a1 = mkargv(a1_), **a2 = mkargv(a2_), **a3 = mkargv(a3_), **a4 = mkargv(a4_);
	struct hc_runopts ro;
	struct hc_error err = {0};
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 6, a1, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_EQ_STR(a1[r], "img");
	ASSERT_EQ_STR(ro.o.hostname, "box1");
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "hostname", "bad_name", &err), -EINVAL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "name", "-x", &err), -EINVAL);
	ASSERT_TRUE(strncmp(err.message, "--name: ", 8) == 0);
	/* vm create's --name is its own (the VM's name), not the table's. */
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_VM, "name", "x", &err), -EINVAL);
	/* -d: the CLI's sugar over vm create (a flag and the name for it). */
	ASSERT_OK(hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 3, a2, NULL, 0, NULL, NULL, &err), &err);
	ASSERT_TRUE(ro.detach);
	ASSERT_EQ_STR(ro.name, "web_1");
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 3, a3, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "'--privileged'") != NULL);
	ASSERT_TRUE(strchr(err.message, '\n') == NULL);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "read-only", NULL, &err), &err);
	ASSERT_TRUE(ro.o.read_only);
	{
		json_t *j = hc_runopts_to_json(&ro.o, HC_RUNOPT_VM);

		ASSERT_TRUE(json_is_true(json_object_get(j, "read-only")));
		json_decref(j);
	}
	hc_runopts_free(&ro);
	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_VM, 4, a4, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_EQ_STR(ro.o.hostname, "vmhost");
	hc_runopts_free(&ro);
	freeargv(a1);
	freeargv(a2);
	freeargv(a3);
	freeargv(a4);
}

/* --cold is run's (a VM has no template), from argv and JSON alike, and round-trips. */
TEST(cold)
{
	const char *const args[] = {"run", "--cold", "alpine", NULL};
	struct hc_runopts ro;
	struct hc_error err = {0};
	char **argv = mkargv(args);
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_RUN, 3, argv, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_TRUE(ro.o.cold);
	json_t *j = hc_runopts_to_json(&ro.o, HC_RUNOPT_RUN);
	ASSERT_TRUE(j && json_is_true(json_object_get(j, "cold")));
	json_decref(j);
	hc_runopts_free(&ro);
	freeargv(argv);
	hc_runopts_init(&ro);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_VM, "cold", NULL, &err), -EINVAL);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "cold", NULL, &err), &err);
	ASSERT_TRUE(ro.o.cold);
	hc_runopts_free(&ro);
}

TEST(add_host)
{
	struct hc_runopts ro, b;
	struct hc_error err = {0};
	static const char *const refused[] = {"db",  ":1.2.3.4",    "d b:1.2.3.4", "db:1.2.3",
					      "db:", "db:[1.2.3.4", "db:host.test"};
	json_t *j;

	hc_runopts_init(&ro);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "add-host", "db.test:10.1.2.3", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_VM, "add-host", "v6:[fd00::1]", &err), &err);
	ASSERT_EQ_INT(ro.o.n_add_hosts, 2);
	ASSERT_EQ_STR(ro.o.add_hosts[0], "db.test:10.1.2.3");
	ASSERT_EQ_STR(ro.o.add_hosts[1], "v6:fd00::1"); /* brackets dropped */
	for (size_t i = 0; i < HC_ARRAY_SIZE(refused); i++) {
		if (hc_runopts_set(&ro, HC_RUNOPT_RUN, "add-host", refused[i], &err) != -EINVAL)
			FAILF("--add-host %s accepted", refused[i]);
		ASSERT_TRUE(strncmp(err.message, "--add-host: invalid value", 25) == 0);
	}
	/* vm create's create.json keeps them. */
	j = hc_runopts_to_json(&ro.o, HC_RUNOPT_VM);
	hc_runopts_init(&b);
	ASSERT_OK(hc_runopts_from_json(&b, HC_RUNOPT_VM, j, NULL, &err), &err);
	json_decref(j);
	ASSERT_EQ_INT(b.o.n_add_hosts, 2);
	ASSERT_EQ_STR(b.o.add_hosts[1], "v6:fd00::1");
	hc_runopts_free(&b);
	for (int i = 2; i < HC_MAX_ADD_HOSTS; i++)
		ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "add-host", "h:1.1.1.1", &err), &err);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "add-host", "h:1.1.1.1", &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "at most") != NULL);
	hc_runopts_free(&ro);
}

/* --tmpfs, --mount, --dns, --cpus 1.5, --pull newer, --platform, -q, --stop-timeout. */
TEST(more_podman_flags)
{
	struct hc_runopts ro, b;
	struct hc_error err = {0};
	char plat[64];
	json_t *j;

	hc_runopts_init(&ro);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "tmpfs", "/scratch", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "tmpfs", "/data:size=8m,mode=0700,exec", &err),
		  &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "mount", "type=tmpfs,target=/t,tmpfs-size=1m",
				 &err),
		  &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "mount",
				 "type=bind,source=/tmp,target=/host-tmp,readonly", &err),
		  &err);
	ASSERT_EQ_INT(ro.o.n_tmpfs, 3);
	ASSERT_EQ_STR(ro.o.tmpfs[0], "/scratch");
	ASSERT_EQ_STR(ro.o.tmpfs[1], "/data:size=8m,mode=0700,exec");
	ASSERT_EQ_STR(ro.o.tmpfs[2], "/t:size=1m");
	ASSERT_EQ_INT(ro.o.n_volumes, 1);
	ASSERT_EQ_STR(ro.o.volumes[0].guest, "/host-tmp");
	ASSERT_TRUE(ro.o.volumes[0].readonly);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "tmpfs", "/x:size=1m,bogus", &err),
		      -EINVAL);
	ASSERT_TRUE(strstr(err.message, "'bogus'") != NULL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "tmpfs", "rel", &err), -EINVAL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "mount", "type=volume,target=/v", &err),
		      -EINVAL);
	ASSERT_TRUE(strstr(err.message, "type=volume is not supported") != NULL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "mount", "type=bind,target=/v", &err),
		      -EINVAL);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "dns", "9.9.9.9", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "dns", "fd00::53", &err), &err);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "dns", "nine", &err), -EINVAL);
	ASSERT_EQ_INT(ro.o.n_dns, 2);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "cpus", "1.5", &err), &err);
	ASSERT_EQ_INT(ro.o.cpus, 2);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "cpus", "3", &err), &err);
	ASSERT_EQ_INT(ro.o.cpus, 3);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "cpus", "0", &err), -EINVAL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "cpus", "65", &err), -EINVAL);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "pull", "newer", &err), &err);
	ASSERT_EQ_INT(ro.o.pull, HC_PULL_NEWER);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "quiet", NULL, &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "stop-timeout", "3", &err), &err);
	ASSERT_TRUE(ro.o.stop_timeout_s == 3);
	{
		struct utsname u;

		uname(&u);
		snprintf(plat, sizeof(plat), "linux/%s",
			 hc_streq(u.machine, "x86_64") ? "amd64" : "arm64");
	}
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "platform", plat, &err), &err);
	ASSERT_EQ_STR(ro.o.platform, plat);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "platform", "linux/s390x", &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "host's architecture") != NULL);
	/* vm create's create.json keeps them. */
	j = hc_runopts_to_json(&ro.o, HC_RUNOPT_VM);
	hc_runopts_init(&b);
	ASSERT_OK(hc_runopts_from_json(&b, HC_RUNOPT_VM, j, NULL, &err), &err);
	json_decref(j);
	ASSERT_EQ_INT(b.o.n_tmpfs, 3);
	ASSERT_EQ_STR(b.o.tmpfs[2], "/t:size=1m");
	ASSERT_EQ_INT(b.o.n_dns, 2);
	ASSERT_EQ_INT(b.o.pull, HC_PULL_NEWER);
	ASSERT_EQ_STR(b.o.platform, plat);
	hc_runopts_free(&b);
	hc_runopts_free(&ro);
}

/* Bug 7 of issue 15: "-v /a:/mnt:rw,z" said "expected ... an absolute GUESTDIR"; podman's
 * options are accepted, a bad one is named. */
TEST(volume_options_named)
{
	struct hc_runopts ro;
	struct hc_error err = {0};

	hc_runopts_init(&ro);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "volume", "/tmp:/mnt:rw,z", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "volume", "/tmp:/m2:Z,ro", &err), &err);
	ASSERT_OK(hc_runopts_set(&ro, HC_RUNOPT_RUN, "volume", "/tmp:/m3:z", &err), &err);
	ASSERT_EQ_INT(ro.o.n_volumes, 3);
	ASSERT_TRUE(!ro.o.volumes[0].readonly && ro.o.volumes[1].readonly);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "volume", "/tmp:/m4:rw,U", &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "unknown volume option 'U'") != NULL);
	ASSERT_EQ_INT(hc_runopts_set(&ro, HC_RUNOPT_RUN, "volume", "/tmp:rel", &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "'rel' is not absolute") != NULL);
	hc_runopts_free(&ro);
}

/* vm exec shares -e, -w, -u, -i, -t, --env-file, --timeout and -d with run; -h is not the
 * hostname there (podman exec has none): an unknown option to the table. */
TEST(vm_exec_scope)
{
	const char *const a1_[] = {"vm exec", "-it",	   "-e", "A=1", "-w",  "/w", "-u",
				   "1:2",     "--timeout", "0",	 "-d",	"vm1", "sh", NULL};
	const char *const a2_[] = {"vm exec", "-h", "x", "vm1", NULL};
	const char *const a3_[] = {"vm exec", "--cpus", "2", "vm1", NULL};
	char **a1 = mkargv(a1_), **a2 = mkargv(a2_), **a3 = mkargv(a3_);
	struct hc_runopts ro;
	struct hc_error err = {0};
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_EXEC, 13, a1, NULL, 0, NULL, NULL, &err);
	ASSERT_OK(r, &err);
	ASSERT_EQ_STR(a1[r], "vm1");
	ASSERT_TRUE(ro.o.interactive && ro.o.tty && ro.detach);
	ASSERT_EQ_STR(ro.o.env[0], "A=1");
	ASSERT_EQ_STR(ro.o.workdir, "/w");
	ASSERT_EQ_STR(ro.o.user, "1:2");
	ASSERT_TRUE(ro.o.timeout_s < 0);
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_EXEC, 4, a2, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "'-h'") != NULL);
	ASSERT_ERR(hc_runopts_getopt(&ro, HC_RUNOPT_EXEC, 4, a3, NULL, 0, NULL, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "--cpus") != NULL);
	hc_runopts_free(&ro);
	freeargv(a1);
	freeargv(a2);
	freeargv(a3);
}

TEST(server_run_refuses_detach)
{
	struct hc_runopts ro;
	struct hc_error err = {0};
	json_t *j = json_pack("{s:s,s:b}", "image", "img", "detach", 1);

	hc_runopts_init(&ro);
	ASSERT_EQ_INT(hc_runopts_from_json(&ro, HC_RUNOPT_RUN, j, NULL, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "vm.create") != NULL);
	json_decref(j);
	hc_runopts_free(&ro);
}

int main(void)
{
	RUN(getopt_sets_fields);
	RUN(getopt_errors);
	RUN(json_sets_same_fields);
	RUN(json_errors);
	RUN(json_roundtrip);
	RUN(tty_and_timeout_zero);
	RUN(memory_units_and_rm);
	RUN(env_file);
	RUN(podman_flags);
	RUN(cold);
	RUN(add_host);
	RUN(more_podman_flags);
	RUN(volume_options_named);
	RUN(vm_exec_scope);
	RUN(server_run_refuses_detach);
	return test_summary();
}
