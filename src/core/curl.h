/* SPDX-License-Identifier: MIT */
/* What every libcurl handle of hotcell's gets set (registry client, VMM REST APIs). */
#pragma once

#include <curl/curl.h>

/* libcurl before 8.11 opens its sockets without FD_CLOEXEC (curl issue #2252); bookworm has
 * 7.88. Every fd of ours is close-on-exec (STYLE.md), so a VMM or virtiofsd we spawn never
 * inherits a registry or API connection. Use as CURLOPT_SOCKOPTFUNCTION. */
int hc_curl_sockopt_cloexec(void *clientp, curl_socket_t fd, curlsocktype purpose);
