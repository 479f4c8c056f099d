// Package size models the sizes of one agent's messages — request and response bytes per
// (method, tool) and direction — as robust distributions in log space, so that an
// exfiltration-sized result or a bloated request stands out against what that tool usually
// carries. Each key keeps a Huber-clipped running location and a running absolute deviation of
// log2(bytes) (a robust stand-in for the median and MAD that an outlier cannot drag), and the
// agent keeps one key per direction over all its calls as the fallback for tools it has used
// too little. A size is scored by the upper tail of a Student's t on its robust z-score. State is
// bounded (at most MaxKeys keys per agent, the least used evicted), updates are O(1) with no
// allocation, and a Sizes round-trips through MarshalBinary/UnmarshalBinary.
package size
