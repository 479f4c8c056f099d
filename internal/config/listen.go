package config

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether a listen address's host (from net.SplitHostPort) only reaches
// this machine: "localhost" (any case) or a loopback IP. Validate methods use it to refuse
// exposed listeners without authentication, so anything else counts as exposed: an empty host
// (":7400") binds every interface, and another host name may resolve to any address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
