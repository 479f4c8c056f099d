import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** Query types the backend answers (pkg/plugin/query.go). */
export type QueryType =
  | 'sessions'
  | 'session_events'
  | 'anomalies'
  | 'agents'
  | 'agent_rate'
  | 'agent_profile'
  | 'agent_sizes'
  | 'timeseries'
  | 'deliveries'
  | 'values';

/** The query model; empty strings, "*" and "$__all" mean "no filter". */
export interface McpwatchQuery extends DataQuery {
  queryType?: QueryType;
  agent?: string;
  server?: string;
  tool?: string;
  session?: string;
  /** Anomaly kinds, comma-separated. */
  kind?: string;
  minSeverity?: string;
  minScore?: number;
  metric?: string;
  by?: string;
  /** A Go duration overriding the step Grafana's interval implies. */
  step?: string;
  field?: string;
  section?: string;
  direction?: string;
  sink?: string;
  status?: string;
  limit?: number;
}

/** String fields in which template variables are replaced. */
export const TEMPLATED_FIELDS = [
  'agent',
  'server',
  'tool',
  'session',
  'kind',
  'minSeverity',
  'metric',
  'by',
  'step',
  'field',
  'section',
  'direction',
  'sink',
  'status',
] as const;

export const DEFAULT_QUERY: Partial<McpwatchQuery> = {
  queryType: 'anomalies',
};

/**
 * jsonData: Grafana's standard HTTP fields the backend reads (timeout in seconds, TLS).
 * The mcpwatch API URL is the data source's url.
 */
export interface McpwatchOptions extends DataSourceJsonData {
  timeout?: number;
  tlsSkipVerify?: boolean;
  tlsAuthWithCACert?: boolean;
  serverName?: string;
}

/** secureJsonData: never sent back to the browser. */
export interface McpwatchSecureOptions {
  /** A bearer token from mcpwatch's api.tokens. */
  token?: string;
  /** PEM CA certificate for an mcpwatch API served over TLS with a private CA. */
  tlsCACert?: string;
}
