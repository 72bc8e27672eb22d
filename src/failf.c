/* failf: see failf.h. */
#include "failf.h"

#include <stdarg.h>
#include <stdio.h>

bool failf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}
