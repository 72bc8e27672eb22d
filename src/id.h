/*
 * id: short unique identifiers for sessions and messages, as they appear
 * in `queued as ID` and in every log line: 12 characters from a
 * 32-symbol alphabet, time-ordered (seconds since 2020) then random, so
 * they sort by age and do not repeat across restarts or workers.
 */
#ifndef SUBRELAY_ID_H
#define SUBRELAY_ID_H

#define ID_LEN 12

void id_new(char out[ID_LEN + 1]);

#endif
