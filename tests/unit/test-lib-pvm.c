/* SPDX-License-Identifier: MIT */
/* Persistent VMs, the pure parts: names and ids, resolution, the state record and its live
 * status (pid + start time), and the control-socket frames. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/pvm.h"
#include "test.h"
#include "core/owner.h"

#define ID_A "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
#define ID_B "aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222"
#define ID_C "bbbb3333bbbb3333bbbb3333bbbb3333bbbb3333bbbb3333bbbb3333bbbb3333"

TEST(names_and_ids)
{
	ASSERT_TRUE(hc_pvm_id_valid(ID_A));
	ASSERT_TRUE(!hc_pvm_id_valid("aaaa"));
	ASSERT_TRUE(!hc_pvm_id_valid(ID_A "0"));
	ASSERT_TRUE(!hc_pvm_id_valid(
		"AAAA1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"));
	ASSERT_TRUE(!hc_pvm_id_valid(
		"../a1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"));
	ASSERT_TRUE(hc_pvm_name_valid("web-1.test_x"));
	ASSERT_TRUE(!hc_pvm_name_valid(""));
	ASSERT_TRUE(!hc_pvm_name_valid("-x"));
	ASSERT_TRUE(!hc_pvm_name_valid("a/b"));
	ASSERT_TRUE(!hc_pvm_name_valid("a b"));
	ASSERT_TRUE(!hc_pvm_name_valid(ID_A)); /* would read as an id */
}

TEST(resolution)
{
	const char *ids[] = {ID_A, ID_B, ID_C};
	const char *names[] = {"web", NULL, "aaaa2"};
	struct hc_error err = {0};

	ASSERT_EQ_INT(hc_pvm_resolve_in(ID_B, ids, names, 3, &err), 1);	 /* exact id */
	ASSERT_EQ_INT(hc_pvm_resolve_in("web", ids, names, 3, &err), 0); /* name */
	ASSERT_EQ_INT(hc_pvm_resolve_in("bb", ids, names, 3, &err), 2);	 /* unique prefix */
	/* A name wins over a prefix it happens to be. */
	ASSERT_EQ_INT(hc_pvm_resolve_in("aaaa2", ids, names, 3, &err), 2);
	ASSERT_EQ_INT(hc_pvm_resolve_in("aaaa", ids, names, 3, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "ambiguous") != NULL);
	ASSERT_EQ_INT(hc_pvm_resolve_in("cc", ids, names, 3, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.message, "no such VM") != NULL);
	ASSERT_EQ_INT(hc_pvm_resolve_in("", ids, names, 3, &err), -EINVAL);
}

TEST(liveness)
{
	unsigned long long me = hc_owner_start_time(getpid());
	pid_t child;
	unsigned long long cs;

	ASSERT_TRUE(me > 0);
	ASSERT_TRUE(hc_pvm_proc_alive(getpid(), me));
	ASSERT_TRUE(!hc_pvm_proc_alive(getpid(), me + 1)); /* a reused pid */
	ASSERT_TRUE(!hc_pvm_proc_alive(0, me));
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	cs = hc_owner_start_time(child);
	ASSERT_TRUE(hc_pvm_proc_alive(child, cs));
	kill(child, SIGKILL);
	/* A zombie is not alive. */
	for (int i = 0; i < 200 && hc_pvm_proc_alive(child, cs); i++)
		usleep(5000);
	ASSERT_TRUE(!hc_pvm_proc_alive(child, cs));
	waitpid(child, NULL, 0);
	ASSERT_TRUE(!hc_pvm_proc_alive(child, cs));
}

TEST(record_roundtrip_and_status)
{
	char tmpl[] = "/tmp/hcpvm.XXXXXX", *home = mkdtemp(tmpl);
	struct hc_error err = {0};
	json_t *rec, *back = NULL;

	ASSERT_TRUE(home != NULL);
	setenv("HOTCELL_HOME", home, 1);
	{
		char dir[HC_PATH_MAX];

		ASSERT_OK(hc_pvm_state_dir(ID_A, dir, sizeof(dir), &err), &err);
		ASSERT_TRUE(mkdir(dir, 0700) == 0);
	}
	rec = json_pack("{s:s,s:s,s:I,s:I}", "id", ID_A, "status", "running", "pid",
			(json_int_t)getpid(), "pid_start", (json_int_t)hc_owner_start_time(getpid()));
	ASSERT_OK(hc_pvm_record_write(ID_A, rec, &err), &err);
	ASSERT_OK(hc_pvm_record_read(ID_A, &back, &err), &err);
	ASSERT_EQ_INT(hc_pvm_record_status(back), HC_PVM_RUNNING);
	/* The same record with another start time: its supervisor is gone. */
	json_object_set_new(back, "pid_start", json_integer(1));
	ASSERT_EQ_INT(hc_pvm_record_status(back), HC_PVM_DEAD);
	json_object_set_new(back, "status", json_string("stopped"));
	ASSERT_EQ_INT(hc_pvm_record_status(back), HC_PVM_STOPPED);
	json_object_set_new(back, "status", json_string("bogus"));
	ASSERT_EQ_INT(hc_pvm_record_status(back), HC_PVM_DEAD);
	json_decref(back);
	/* A record whose id does not match its directory is refused. */
	json_object_set_new(rec, "id", json_string(ID_B));
	ASSERT_OK(hc_pvm_record_write(ID_A, rec, &err), &err);
	ASSERT_ERR(hc_pvm_record_read(ID_A, &back, &err));
	ASSERT_ERR(hc_pvm_record_read("../../etc", &back, &err));
	json_decref(rec);
	ASSERT_TRUE(hc_path_rm_rf(home, &err) == 0);
}

TEST(ctl_frames)
{
	static const char *const ops[] = {"ping", "stop", NULL};
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_pvm_ctl_frame f;
	struct hc_error err = {0};
	const char *op;
	json_t *req;
	size_t used;
	uint8_t sig[4] = {0, 0, 0, 15};

	ASSERT_TRUE(hc_pvm_ctl_append(&b, HC_CTL_REQUEST, "{\"op\":\"stop\"}", 13) == 0);
	ASSERT_TRUE(hc_pvm_ctl_append(&b, HC_CTL_SIGNAL, sig, 4) == 0);
	ASSERT_EQ_INT(hc_pvm_ctl_parse((uint8_t *)b.data, 3, &f, &used), 0); /* partial */
	ASSERT_EQ_INT(hc_pvm_ctl_parse((uint8_t *)b.data, b.len, &f, &used), 1);
	ASSERT_EQ_INT(f.type, HC_CTL_REQUEST);
	ASSERT_OK(hc_pvm_ctl_request(&f, ops, &req, &op, &err), &err);
	ASSERT_EQ_STR(op, "stop");
	json_decref(req);
	ASSERT_EQ_INT(hc_pvm_ctl_parse((uint8_t *)b.data + used, b.len - used, &f, &used), 1);
	ASSERT_EQ_INT(f.type, HC_CTL_SIGNAL);
	hc_buf_free(&b);

	/* Bad frames: unknown type, a length over the type's bound, a bad signal. */
	{
		const uint8_t bad1[] = {0, 0, 0, 0, 42};
		const uint8_t bad2[] = {0, 0x10, 0, 0, HC_CTL_STDIN};
		const uint8_t bad3[] = {0, 0, 0, 4, HC_CTL_SIGNAL, 0, 0, 0, 0};
		const uint8_t bad4[] = {0, 0, 0, 1, HC_CTL_CANCEL, 'x'};

		ASSERT_EQ_INT(hc_pvm_ctl_parse(bad1, sizeof(bad1), &f, &used), -EBADMSG);
		ASSERT_EQ_INT(hc_pvm_ctl_parse(bad2, sizeof(bad2), &f, &used), -EBADMSG);
		ASSERT_EQ_INT(hc_pvm_ctl_parse(bad3, sizeof(bad3), &f, &used), -EBADMSG);
		ASSERT_EQ_INT(hc_pvm_ctl_parse(bad4, sizeof(bad4), &f, &used), -EBADMSG);
	}
	/* Requests: unknown op, no op, not an object. */
	{
		static const char *const bad[] = {"{\"op\":\"rm\"}", "{}", "[1]", "{\"op\":1}",
						  "{\"op\":\"ping\",\"op\":\"stop\"}"};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct hc_pvm_ctl_frame rf = {.type = HC_CTL_REQUEST,
						      .len = (uint32_t)strlen(bad[i]),
						      .payload = (const uint8_t *)bad[i]};

			hc_error_clear(&err);
			if (hc_pvm_ctl_request(&rf, ops, &req, &op, &err) >= 0)
				FAILF("%s accepted", bad[i]);
			if (!err.message[0])
				FAILF("%s: no message", bad[i]);
		}
	}
}

TEST(ctl_reply_error)
{
	struct hc_error in = {0}, out = {0};
	json_t *j;

	hc_error_setk(&in, -EBUSY, "vm", "VM x is busy");
	j = hc_pvm_ctl_error_json(&in);
	ASSERT_EQ_INT(hc_pvm_ctl_reply_error(j, &out), -EBUSY);
	ASSERT_EQ_STR(out.message, "VM x is busy");
	ASSERT_EQ_STR(out.kind, "vm");
	json_decref(j);
	j = json_pack("{s:b}", "ok", 1);
	ASSERT_EQ_INT(hc_pvm_ctl_reply_error(j, &out), 0);
	json_decref(j);
}

int main(void)
{
	RUN(names_and_ids);
	RUN(resolution);
	RUN(liveness);
	RUN(record_roundtrip_and_status);
	RUN(ctl_frames);
	RUN(ctl_reply_error);
	return test_summary();
}
