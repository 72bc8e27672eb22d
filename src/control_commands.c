/*
 * control_commands.c: see control_commands.h.
 */
#include "control_commands.h"

#include <string.h>

const struct control_command control_commands[CONTROL_NCOMMANDS] = {
	[CONTROL_STATUS] = { "status", "status", "the daemon's state", CONTROL_ARG_NONE, false, false },
	[CONTROL_QUEUE] = { "queue", "queue", "list the queued messages", CONTROL_ARG_NONE, false, false },
	[CONTROL_SHOW] = { "show", "show ID", "one queued message", CONTROL_ARG_REQUIRED, false, false },
	[CONTROL_FLUSH] = { "flush", "flush [ID]", "retry one queued message, or all, now", CONTROL_ARG_OPTIONAL, true, false },
	[CONTROL_DELETE] = { "delete", "delete ID", "remove a queued or failed message", CONTROL_ARG_REQUIRED, true, false },
	[CONTROL_RELOAD] = { "reload", "reload", "reload the configuration (as SIGHUP)", CONTROL_ARG_NONE, true, false },
	[CONTROL_STATS] = { "stats", "stats", "counters", CONTROL_ARG_NONE, false, false },
	[CONTROL_FAILED] = { "failed", "failed", "list the failed messages with the reason", CONTROL_ARG_NONE, false, false },
	[CONTROL_REQUEUE] = { "requeue", "requeue ID|all", "put one failed message, or all, back in the queue",
	    CONTROL_ARG_REQUIRED, true, false },
	[CONTROL_HEALTH] = { "health", "health", "ready or not, with the reasons (as GET /readyz)", CONTROL_ARG_NONE, false,
	    true },
};

int control_command_find(const char *name)
{
	for (int i = 0; i < CONTROL_NCOMMANDS; i++)
		if (strcmp(control_commands[i].name, name) == 0)
			return i;
	return -1;
}
