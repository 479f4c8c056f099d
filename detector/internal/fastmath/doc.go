// Package fastmath computes natural logarithms and exponentials to within about 1e-14 at a
// third of the math package's cost. The detector's models take several of each per event (a
// request's sizes, a call's transition probability, a finished bucket's variances, band and
// score); at 100,000 agents and a microsecond an event, the math package alone would take a
// fifth of the budget.
package fastmath
