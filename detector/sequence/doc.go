// Package sequence is the tool-sequence model: which (method, tool) follows which for one agent.
//
// A Baseline holds one agent's (or one peer group's) bounded counts: how often each call and
// each transition between calls occurred, in how many sessions, and the range of per-session
// counts and session lengths. A Session records one session as it happens. Each call is scored
// against the baseline on arrival (Step: the smoothed transition probability, first-seen tools
// and transitions, calls repeated more often than ever before), and the whole session when it
// ends (End: unseen start or end, counts and length outside their learnt range). Every finding
// carries a probability — "this session does X" estimated from how many of the agent's past
// sessions did X, with Dirichlet smoothing toward the agent's peer group and then a fixed prior —
// and turns into a 0–100 score and a sentence ("transition tools/list → tools/call delete_all
// seen in 0 of 1,204 sessions"). Sessions are learnt when they end (Learn), so a session is
// always judged by what came before it.
//
// The hot path (Step, End) allocates nothing: calls are interned to 16-bit symbols once, and
// the per-agent tables are small open-addressing hash tables capped in size, evicting the
// least-supported entries. Baselines are snapshotted with MarshalBinary. Nothing here is safe
// for concurrent use: the detector owns an agent's state from one goroutine.
package sequence
