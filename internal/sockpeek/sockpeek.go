package sockpeek

// State is what a peek found.
type State int

const (
	// Unknown: the connection cannot be peeked at (not a socket, or not on this platform).
	Unknown State = iota
	// Empty: open, nothing waiting.
	Empty
	// Data: open, with bytes waiting to be read.
	Data
	// Closed: the peer closed or reset the connection, or its socket is gone.
	Closed
)
