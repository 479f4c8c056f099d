// Package fastlog computes natural logarithms to within about 1e-14 at a third of math.Log's
// cost. The detector's models take several logarithms per event (a request's sizes, a call's
// transition probability, a finished bucket's variances and score); at 100,000 agents and a
// microsecond an event, math.Log alone would take a fifth of the budget.
package fastlog
