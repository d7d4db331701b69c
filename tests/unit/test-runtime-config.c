/* SPDX-License-Identifier: MIT */
/* hotcell-runtime's config.json / process.json parsing, the VM options made from them, signal
 * names, container ids and the state JSON (runtime/runtime.h). */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"
#include "lib/pvm.h"
#include "runtime/runtime.h"
#include "test.h"
#include "core/owner.h"

static const char *const config_ok =
	"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":false},"
	"\"hostname\":\"box\",\"process\":{\"terminal\":false,\"args\":[\"sh\",\"-c\",\"echo\"],"
	"\"env\":[\"PATH=/bin\",\"A=b=c\"],\"cwd\":\"/tmp\",\"user\":{\"uid\":1000,\"gid\":100}},"
	"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	"{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"/tmp\",\"options\":[\"rbind\","
	"\"ro\"]},{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/etc/hosts\","
	"\"options\":[\"bind\"]},{\"destination\":\"/dev/shm\",\"source\":\"/tmp\",\"options\":"
	"[\"bind\"]}],"
	"\"linux\":{\"resources\":{\"memory\":{\"limit\":201326592},\"cpu\":{\"quota\":150000,"
	"\"period\":100000}},\"namespaces\":[{\"type\":\"pid\"}]},"
	"\"annotations\":{\"org.hotcell.cpus\":\"1\",\"io.podman\":\"x\"}}";

TEST(config_parses)
{
	struct hc_error err = {0};
	struct rt_config c;

	ASSERT_OK(rt_config_parse(config_ok, strlen(config_ok), &c, &err), &err);
	ASSERT_EQ_STR(c.root_path, "rootfs");
	ASSERT_EQ_STR(c.hostname, "box");
	ASSERT_TRUE(c.has_process);
	ASSERT_EQ_INT(c.process.n_args, 3);
	ASSERT_EQ_STR(c.process.args[2], "echo");
	ASSERT_EQ_INT(c.process.n_env, 2);
	ASSERT_EQ_STR(c.process.cwd, "/tmp");
	ASSERT_EQ_INT(c.process.uid, 1000);
	ASSERT_EQ_INT(c.process.gid, 100);
	/* proc is the guest's own; the three binds are kept here (runopts filters further) */
	ASSERT_EQ_INT(c.n_volumes, 3);
	ASSERT_EQ_STR(c.volumes[0].guest, "/data");
	ASSERT_TRUE(c.volumes[0].readonly);
	ASSERT_EQ_INT(c.memory_mib, 192);
	ASSERT_EQ_INT(c.cpus, 2);
	ASSERT_EQ_STR(json_string_value(json_object_get(c.annotations, "io.podman")), "x");
	rt_config_free(&c);
}

TEST(config_runopts)
{
	struct hc_error err = {0};
	struct hc_runopts ro;
	struct rt_config c;

	ASSERT_OK(rt_config_parse(config_ok, strlen(config_ok), &c, &err), &err);
	hc_runopts_init(&ro);
	ASSERT_OK(rt_config_runopts(&c, "/bundle", &ro, &err), &err);
	ASSERT_EQ_STR(ro.o.rootfs_dir, "/bundle/rootfs");
	ASSERT_EQ_STR(ro.o.workdir, "/tmp");
	ASSERT_EQ_STR(ro.o.user, "1000:100");
	ASSERT_EQ_INT(ro.o.n_env, 2);
	/* only /data: /etc/hosts is a file, /dev/shm is the guest's */
	ASSERT_EQ_INT(ro.o.n_volumes, 1);
	ASSERT_EQ_STR(ro.o.volumes[0].guest, "/data");
	ASSERT_TRUE(ro.o.volumes[0].readonly);
	ASSERT_EQ_INT(ro.o.memory_mib, 192);
	ASSERT_EQ_INT(ro.o.cpus, 1); /* the annotation wins over the quota */
	hc_runopts_free(&ro);
	rt_config_free(&c);
}

/* The engine's network namespace (a "network" entry with a path) is kept for create; one
 * without a path (runc would make an empty one) is none. */
TEST(config_netns)
{
	const char *with = "{\"ociVersion\":\"1\",\"root\":{\"path\":\"/r\"},\"linux\":{"
			   "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\","
			   "\"path\":\"/run/netns/p1\"}]}}";
	const char *without = "{\"ociVersion\":\"1\",\"root\":{\"path\":\"/r\"},\"linux\":{"
			      "\"namespaces\":[{\"type\":\"network\"}]}}";
	const char *bad = "{\"ociVersion\":\"1\",\"root\":{\"path\":\"/r\"},\"linux\":{"
			  "\"namespaces\":[{\"type\":\"network\",\"path\":\"rel\"}]}}";
	struct hc_error err = {0};
	struct hc_runopts ro;
	struct rt_config c;

	ASSERT_OK(rt_config_parse(with, strlen(with), &c, &err), &err);
	ASSERT_EQ_STR(c.netns, "/run/netns/p1");
	hc_runopts_init(&ro);
	/* create joins it, and networks the VM only when the engine routed it. */
	ASSERT_OK(rt_config_runopts(&c, "/b", &ro, &err), &err);
	ASSERT_EQ_INT(ro.o.network, HC_NET_NONE);
	hc_runopts_free(&ro);
	rt_config_free(&c);
	ASSERT_OK(rt_config_parse(without, strlen(without), &c, &err), &err);
	ASSERT_TRUE(c.netns == NULL);
	hc_runopts_init(&ro);
	ASSERT_OK(rt_config_runopts(&c, "/b", &ro, &err), &err);
	ASSERT_EQ_INT(ro.o.network, HC_NET_NONE);
	hc_runopts_free(&ro);
	rt_config_free(&c);
	ASSERT_ERR(rt_config_parse(bad, strlen(bad), &c, &err));
	ASSERT_TRUE(strstr(err.message, "network namespace") != NULL);
}

TEST(config_bad_annotation)
{
	const char *j = "{\"ociVersion\":\"1\",\"root\":{\"path\":\"/r\"},"
			"\"annotations\":{\"org.hotcell.memory_mib\":\"lots\"}}";
	struct hc_error err = {0};
	struct hc_runopts ro;
	struct rt_config c;

	ASSERT_OK(rt_config_parse(j, strlen(j), &c, &err), &err);
	hc_runopts_init(&ro);
	ASSERT_ERR(rt_config_runopts(&c, "/b", &ro, &err));
	ASSERT_TRUE(strstr(err.message, "org.hotcell.memory_mib") != NULL);
	ASSERT_EQ_STR(ro.o.rootfs_dir, "/r");
	hc_runopts_free(&ro);
	rt_config_free(&c);
}

static void expect_bad(const char *j, const char *needle)
{
	struct hc_error err = {0};
	struct rt_config c;

	if (rt_config_parse(j, strlen(j), &c, &err) == 0) {
		rt_config_free(&c);
		printf("FAIL: config_refused: accepted %s\n", j);
		test_cur_failed = 1;
		return;
	}
	if (!strstr(err.message, needle)) {
		printf("FAIL: config_refused: '%s' lacks '%s'\n", err.message, needle);
		test_cur_failed = 1;
	}
}

TEST(config_refused)
{
	expect_bad("", "config.json");
	expect_bad("[]", "an object");
	expect_bad("{\"root\":{\"path\":\"r\"}}", "ociVersion");
	expect_bad("{\"ociVersion\":\"1\"}", "root.path");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"\"}}", "root.path");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[]}}",
		   "process.args");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[1]}}",
		   "process.args");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
		   "\"env\":[\"NOEQUALS\"]}}",
		   "KEY=VALUE");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
		   "\"user\":{\"uid\":-1}}}",
		   "process.user");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
		   "\"cwd\":\"tmp\"}}",
		   "process.cwd");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"mounts\":[{\"destination\":"
		   "\"x\"}]}",
		   "mounts");
	expect_bad("{\"ociVersion\":\"1\",\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"}}",
		   "duplicate");
	expect_bad("{\"ociVersion\":\"1\",\"root\":{\"path\":\"r\"},\"annotations\":[]}",
		   "annotations");
}

TEST(process_json)
{
	const char *j = "{\"args\":[\"ls\"],\"env\":[\"X=1\"],\"cwd\":\"/\",\"terminal\":true,"
			"\"user\":{\"uid\":5,\"gid\":6}}";
	struct hc_error err = {0};
	struct rt_process p;

	ASSERT_OK(rt_process_parse(j, strlen(j), &p, &err), &err);
	ASSERT_EQ_STR(p.args[0], "ls");
	ASSERT_TRUE(p.terminal);
	ASSERT_EQ_INT(p.uid, 5);
	ASSERT_EQ_INT(p.gid, 6);
	rt_process_free(&p);
	ASSERT_ERR(rt_process_parse("{\"args\":\"ls\"}", 13, &p, &err));
	ASSERT_TRUE(strstr(err.message, "process.json") != NULL);
	ASSERT_ERR(rt_process_parse("{\"args\":[\"a\"],\"terminal\":1}", 27, &p, &err));
}

TEST(signals)
{
	ASSERT_EQ_INT(rt_signal_parse("9"), SIGKILL);
	ASSERT_EQ_INT(rt_signal_parse("KILL"), SIGKILL);
	ASSERT_EQ_INT(rt_signal_parse("SIGTERM"), SIGTERM);
	ASSERT_EQ_INT(rt_signal_parse("sigusr1"), SIGUSR1);
	ASSERT_EQ_INT(rt_signal_parse("15"), SIGTERM);
	ASSERT_ERR(rt_signal_parse("0"));
	ASSERT_ERR(rt_signal_parse("65"));
	ASSERT_ERR(rt_signal_parse("9x"));
	ASSERT_ERR(rt_signal_parse("SIGNOPE"));
	ASSERT_ERR(rt_signal_parse(""));
}

TEST(ids)
{
	ASSERT_TRUE(rt_id_valid("abc"));
	ASSERT_TRUE(rt_id_valid("a1_b.c-d+e"));
	ASSERT_TRUE(!rt_id_valid(""));
	ASSERT_TRUE(!rt_id_valid("../x"));
	ASSERT_TRUE(!rt_id_valid("a/b"));
	ASSERT_TRUE(!rt_id_valid(".hidden"));
	ASSERT_TRUE(!rt_id_valid("a b"));
}

TEST(state_roundtrip)
{
	char root[] = "/tmp/hcrtunit.XXXXXX";
	struct hc_error err = {0};
	struct rt_state st, again;
	json_t *o;

	ASSERT_TRUE(mkdtemp(root) != NULL);
	ASSERT_OK(rt_state_open(root, "c1", true, &st, &err), &err);
	ASSERT_ERR(rt_state_open(root, "c1", true, &again, &err));
	ASSERT_EQ_INT(err.code, -EEXIST);
	rt_state_close(&again);
	json_object_set_new(st.rec, "bundle", json_string("/b"));
	json_object_set_new(st.rec, "created", json_string("2026-01-01T00:00:00Z"));
	json_object_set_new(st.rec, "status", json_string("created"));
	/* our own pid, with its real start time: alive */
	json_object_set_new(st.rec, "pid", json_integer(getpid()));
	json_object_set_new(st.rec, "pid_start",
			    json_integer((json_int_t)hc_owner_start_time(getpid())));
	ASSERT_OK(rt_state_save(&st, &err), &err);
	rt_state_close(&st);
	ASSERT_OK(rt_state_open(root, "c1", false, &st, &err), &err);
	ASSERT_EQ_INT(rt_state_status(&st), RT_CREATED);
	o = rt_state_oci(&st);
	ASSERT_EQ_STR(json_string_value(json_object_get(o, "status")), "created");
	ASSERT_EQ_INT(json_integer_value(json_object_get(o, "pid")), getpid());
	ASSERT_EQ_STR(json_string_value(json_object_get(o, "ociVersion")), RT_OCI_VERSION);
	ASSERT_TRUE(json_is_object(json_object_get(o, "annotations")));
	json_decref(o);
	/* a reused pid (another start time) reads as stopped, pid 0 */
	json_object_set_new(st.rec, "pid_start", json_integer(1));
	ASSERT_EQ_INT(rt_state_status(&st), RT_STOPPED);
	o = rt_state_oci(&st);
	ASSERT_EQ_INT(json_integer_value(json_object_get(o, "pid")), 0);
	json_decref(o);
	rt_state_close(&st);
	ASSERT_ERR(rt_state_open(root, "nope", false, &st, &err));
	ASSERT_TRUE(strstr(err.message, "does not exist") != NULL);
	rt_state_close(&st);
	hc_path_rm_rf(root, NULL);
}

int main(void)
{
	RUN(config_parses);
	RUN(config_runopts);
	RUN(config_netns);
	RUN(config_bad_annotation);
	RUN(config_refused);
	RUN(process_json);
	RUN(signals);
	RUN(ids);
	RUN(state_roundtrip);
	return test_summary();
}
