// Package rate models one agent's request rate — calls per bucket (one minute by default) —
// and scores every finished bucket against what is typical for that agent at that time.
//
// The baseline is a robust seasonal decomposition learnt online, in the spirit of robust
// Holt-Winters: a level that follows slow trends, an hour-of-day profile and an hour-of-week
// profile, each slot with its own spread. Counts are modelled on a log scale with a Poisson
// floor on the spread, so quiet agents are not flagged for the noise of small numbers.
// Observations are clipped (Huber) before they are learnt, so one burst barely moves the
// baseline; a shift that persists is accepted as the new level. Seasonal slots are shrunk
// towards the coarser estimate until enough periods have been seen, and a cold agent starts
// from a Prior (a peer group's or the population's baseline).
//
// A bucket's probability is the tail probability of its residual under a Student's t, in the
// direction it deviates (spikes and sudden silences both count), tempered by how often the
// agent has been this surprising before; Score turns it into 0–100 and Explain into words
// ("212 calls/min; typical 10–35 at this hour"). State is a few hundred float32s per agent,
// each bucket costs O(1) with no allocations, and a Model round-trips through
// MarshalBinary/UnmarshalBinary.
package rate
