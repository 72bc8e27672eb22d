/*
 * control_commands: the control protocol's one table of commands, shared
 * by the daemon (control.c runs them) and subrelayctl (which checks a
 * request before sending it, so a typo is a usage error even when no
 * daemon runs), and the request size limit both enforce.
 */
#ifndef SUBRELAY_CONTROL_COMMANDS_H
#define SUBRELAY_CONTROL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_LINE_MAX 512       /* request bytes, newline included */

enum control_arg { CONTROL_ARG_NONE, CONTROL_ARG_OPTIONAL, CONTROL_ARG_REQUIRED };

enum control_command_id {
	CONTROL_STATUS, CONTROL_QUEUE, CONTROL_SHOW, CONTROL_FLUSH, CONTROL_DELETE, CONTROL_RELOAD, CONTROL_STATS,
	CONTROL_FAILED, CONTROL_REQUEUE, CONTROL_HEALTH,
	CONTROL_NCOMMANDS
};

struct control_command {
	const char *name;
	const char *usage;         /* e.g. "flush [ID]" */
	const char *help;          /* one line for subrelayctl -h */
	enum control_arg arg;
	bool changes;              /* logged at info by the daemon; read-only ones at debug */
	bool verdict;              /* the output's first line is "ready" or not: subrelayctl exits 0 or 1 */
};

extern const struct control_command control_commands[CONTROL_NCOMMANDS];

/* The command called name, or -1. */
int control_command_find(const char *name);

#endif
