package store

import (
	"context"
	"errors"

	"github.com/mcpwatch/mcpwatch/schemas"
)

var errNotYet = errors.New("not implemented yet")

func (c *ClickHouse) Anomaly(ctx context.Context, id string) (schemas.Anomaly, error) {
	return schemas.Anomaly{}, errNotYet
}
func (c *ClickHouse) Agents(ctx context.Context, q AgentQuery) ([]Agent, error) {
	return nil, errNotYet
}
func (c *ClickHouse) Agent(ctx context.Context, id string, q AgentQuery) (Agent, error) {
	return Agent{}, errNotYet
}
func (c *ClickHouse) TimeSeries(ctx context.Context, q SeriesQuery) ([]Series, error) {
	return nil, errNotYet
}
func (c *ClickHouse) Values(ctx context.Context, field string, q ValuesQuery) ([]string, error) {
	return nil, errNotYet
}
func (c *ClickHouse) SaveDefinitions(ctx context.Context, defs []Definition) error { return errNotYet }
func (c *ClickHouse) Definitions(ctx context.Context, q DefinitionQuery) ([]Definition, error) {
	return nil, errNotYet
}
func (c *ClickHouse) RecordDeliveries(ctx context.Context, ds []Delivery) error { return errNotYet }
func (c *ClickHouse) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	return nil, errNotYet
}
