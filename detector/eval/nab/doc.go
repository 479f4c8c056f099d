// Package nab runs mcpwatch's request-rate model on the Numenta Anomaly Benchmark (NAB) and
// scores the results with a Go port of NAB's scorer, so the model's quality is a number that
// can be compared with published detectors. It loads NAB's layout (data/<category>/<file>.csv,
// labels/combined_windows.json, profiles.json), writes NAB-format result files, and computes
// the standard, reward_low_FP_rate and reward_low_FN_rate scores: windowed scoring with NAB's
// scaled sigmoid, one threshold swept over the whole corpus, normalised against the null
// detector (0) and a perfect detector (100).
package nab
