/* SPDX-License-Identifier: MIT */
#include <fcntl.h>

#include "core/curl.h"

int hc_curl_sockopt_cloexec(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	(void)clientp;
	(void)purpose;
	return fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? CURL_SOCKOPT_ERROR : CURL_SOCKOPT_OK;
}
