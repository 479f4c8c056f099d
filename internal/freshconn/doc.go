// Package freshconn closes, at shutdown, the connections an HTTP server accepted that have
// not sent a request yet. Clients dial spare connections they may never use, and
// http.Server.Shutdown waits up to 5 s for each to send its first request before it counts
// as idle; a server that is stopping will serve none, so there is nothing to wait for.
package freshconn
