/* SPDX-License-Identifier: MIT */
/*
 * The run options (DESIGN.md §6), parsed in one place for every caller: `hotcell run` and
 * `hotcell vm create` (a getopt loop over the table) and the server's JSON params (an object
 * whose keys are the long option names). One table entry per option: its long and short name,
 * its argument kind and its setter into struct hc_run_opts; adding an option is adding an
 * entry. The library never prints: a bad value fills the hc_error with one line naming the
 * option ("--cpus: invalid value 'x' (a whole number up to 64)").
 *
 * A struct hc_runopts owns everything the hc_run_opts it carries points at (strings are
 * copied; -v host paths are made absolute with realpath()), so the source (argv, a json_t)
 * may go away before the options are used.
 */
#pragma once

#include <jansson.h>

#include "hotcell.h"

/* Which commands an option applies to. */
#define HC_RUNOPT_RUN 1u /* hotcell run, the server's run */
#define HC_RUNOPT_VM 2u	 /* hotcell vm create, the server's vm.create */
#define HC_RUNOPT_EXEC                                                                             \
	4u /* hotcell vm exec: the options it shares with run (-e, -w, -u, -i,                     \
	    * -t, --env-file, --timeout, -d) */

struct hc_runopts {
	struct hc_run_opts o; /* hc_run_opts_init'ed; its pointers point into the fields below */
	/* Owned storage (internal). */
	char **strs;
	size_t n_strs;
	const char **env;
	size_t n_env;
	struct hc_volume *vols;
	size_t n_vols;
	struct hc_port *ports;
	size_t n_ports;
	const char **devs;
	size_t n_devs;
	const char **cmd;
	size_t n_cmd;
	const char **allow;
	size_t n_allow;
	const char **hosts;
	size_t n_hosts;
	const char **tmpfs;
	size_t n_tmpfs;
	const char **dns;
	size_t n_dns;
	/* -d/--detach and --name: not run options of the library. `hotcell run -d` is sugar
	 * over vm create (the CLI's); vm exec --detach is hc_pvm_exec_opts.detach. */
	bool detach;
	const char *name;
};

void hc_runopts_init(struct hc_runopts *ro);
void hc_runopts_free(struct hc_runopts *ro);

/* Sets one option by its long name ("cpus") from its text form; for a flag (no argument)
 * value is ignored. scope says which command is parsing (HC_RUNOPT_*): an option that does
 * not apply to it is refused. -ENOENT for an unknown name, -EINVAL for a bad value. */
int hc_runopts_set(struct hc_runopts *ro, unsigned scope, const char *name, const char *value,
		   struct hc_error *err);

/* A caller's own options for the getopt loop, beside the table's (--json, --name, -h, ...).
 * id is handed to on_extra; short_name 0 for none. */
struct hc_runopt_extra {
	const char *name;
	int has_arg; /* no_argument / required_argument (getopt.h) */
	int short_name;
	int id;
};

/* Parses argv (argv[0] is the command's name) up to the first operand (IMAGE): options end
 * there, as in `hotcell run`. Extra options go to on_extra(id, optarg, userdata), which returns
 * 0 or a negative errno with err set; an unknown option sets err to the usage line getopt
 * printed nothing for ("unknown option ..."), -EINVAL. Returns the index of the first operand
 * (argc when none). Uses the global getopt state. */
int hc_runopts_getopt(struct hc_runopts *ro, unsigned scope, int argc, char **argv,
		      const struct hc_runopt_extra *extra, size_t n_extra,
		      int (*on_extra)(int id, const char *arg, void *userdata,
				      struct hc_error *err),
		      void *userdata, struct hc_error *err);

/* Sets the options from a JSON object: each key is a long option name ('_' may stand for
 * '-': "boot_timeout"); values are strings, numbers (taken as their decimal text), booleans
 * (flags: true sets, false leaves unset) or, for repeatable options (env, volume, publish,
 * device), an array of strings; "env" also takes an object {"KEY": "VALUE"}. "image" (string)
 * and "cmd" (array of strings) set the image and the command. Keys named in skip (a
 * NULL-terminated list, may be NULL) are left to the caller; any other key is an error. */
int hc_runopts_from_json(struct hc_runopts *ro, unsigned scope, const json_t *params,
			 const char *const *skip, struct hc_error *err);

/* The inverse of hc_runopts_from_json for the options of scope that differ from their
 * defaults, plus "image" (a new reference). */
json_t *hc_runopts_to_json(const struct hc_run_opts *o, unsigned scope);

/* Parses a duration in seconds (> 0) the way --timeout does; flag names it in the error. */
int hc_runopts_parse_seconds(const char *flag, const char *s, double *ret, struct hc_error *err);

/* Sets the image and the command (copied). */
int hc_runopts_set_image(struct hc_runopts *ro, const char *image, struct hc_error *err);
int hc_runopts_set_cmd(struct hc_runopts *ro, const char *const *cmd, size_t n,
		       struct hc_error *err);

/* The option lines of a usage text for scope, one per option ("  --cpus N   virtual CPUs
 * (1)\n"), malloc'd; NULL when out of memory. */
char *hc_runopts_help(unsigned scope);
