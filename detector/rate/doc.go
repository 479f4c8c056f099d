// Package rate models one agent's request rate — calls per bucket (one minute by default) —
// and scores every finished bucket against what is typical for that agent at that time.
//
// The baseline is learnt online, in the spirit of robust Holt-Winters: a level that follows
// slow trends, and time-of-day, day-of-week and time-of-hour profiles, each slot with its
// own average and spread. A slot counts as far as it stands out from what it refines beyond
// what noise explains (James-Stein shrinkage), so a cold or rhythmless agent leans on its
// level and a seasonal one on its profiles. Observations are clipped (Huber) before they are
// learnt, so a burst barely moves the baseline while a lasting shift is followed. A cold
// agent can start from a Prior: a peer group's or the population's baselines.
//
// Counts are scored under a negative binomial (a Poisson when the rate is steady), so quiet
// agents are not flagged for the noise of small numbers; plain values (Config.Values) under a
// Student's t. The tail probability, in the direction the bucket deviates (spikes and sudden
// silences both count), is tempered by how often the agent has been this surprising before;
// Result.Score turns it into 0–100, Params.Explain into words and numbers ("212 calls/min;
// typical 10–35 at this hour"), and buckets that repeat an ongoing anomaly are marked so they
// are merged rather than raised again. A model takes under 2 KiB, costs O(1) per bucket with
// no allocations, and round-trips through MarshalBinary/UnmarshalBinary.
package rate
