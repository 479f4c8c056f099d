// Package sequences evaluates the tool-sequence model (detector/sequence) on labelled session
// data such as the HDFS log benchmark: one session per line, space-separated keys. It learns the
// normal training sessions one after another, exactly as the live detector learns an agent's
// sessions, picks the alert threshold from the scores those training sessions got before they
// were learnt (never from test labels), and reports precision, recall, F1 and the share of
// normal sessions flagged — on separate test files or, with k-fold, on held-out folds of the
// training file.
package sequences
