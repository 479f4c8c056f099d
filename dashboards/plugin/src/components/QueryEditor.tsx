import React, { ChangeEvent } from 'react';
import { Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, Stack } from '@grafana/ui';
import { QueryEditorProps } from '@grafana/data';
import { DataSource } from '../datasource';
import { McpwatchOptions, McpwatchQuery, QueryType } from '../types';

type Props = QueryEditorProps<DataSource, McpwatchQuery, McpwatchOptions>;

const QUERY_TYPES: Array<ComboboxOption<QueryType>> = [
  { value: 'anomalies', label: 'Anomalies', description: 'Anomalies, most recently seen first' },
  { value: 'agents', label: 'Agents by risk', description: 'Agents active in the range, riskiest first' },
  { value: 'agent_rate', label: 'Agent rate vs band', description: "An agent's calls per minute against its learned band" },
  { value: 'agent_profile', label: 'Agent profile', description: "An agent's tool mix or transitions against its baseline" },
  { value: 'agent_sizes', label: 'Agent sizes vs quantiles', description: "An agent's message sizes against its p50/p90/p99" },
  { value: 'sessions', label: 'Sessions', description: 'Sessions, most recently active first' },
  { value: 'session_events', label: 'Session timeline', description: "One session's events in order" },
  { value: 'timeseries', label: 'Time series', description: 'Calls, errors, anomalies or deliveries per step' },
  { value: 'deliveries', label: 'Alert deliveries', description: 'Alert delivery outcomes per sink' },
  { value: 'values', label: 'Values', description: 'Agents, servers or tools (template variables)' },
];

const opts = (...values: string[]): Array<ComboboxOption<string>> => values.map((v) => ({ value: v, label: v }));

const SEVERITIES = opts('', 'info', 'low', 'medium', 'high', 'critical');
const METRICS = opts('calls', 'errors', 'anomalies', 'deliveries');
const SPLITS: Record<string, Array<ComboboxOption<string>>> = {
  calls: opts('', 'agent', 'server', 'tool'),
  errors: opts('', 'agent', 'server', 'tool'),
  anomalies: opts('', 'agent', 'server', 'kind', 'severity'),
  deliveries: opts('', 'agent', 'sink', 'status', 'kind', 'severity'),
};
const FIELDS = opts('agents', 'servers', 'tools');
const SECTIONS = opts('tools', 'transitions');
const DIRECTIONS = opts('request', 'response');
const DELIVERY_STATUSES = opts('', 'delivered', 'dead_lettered', 'replayed');

const W = 14;

export function QueryEditor({ query, onChange, onRunQuery }: Props) {
  const set = (patch: Partial<McpwatchQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const text = (key: keyof McpwatchQuery, label: string, placeholder: string, tooltip?: string) => (
    <InlineField label={label} labelWidth={W} tooltip={tooltip}>
      <Input
        id={`query-editor-${key}`}
        width={24}
        value={(query[key] as string | undefined) ?? ''}
        placeholder={placeholder}
        onChange={(e: ChangeEvent<HTMLInputElement>) => set({ [key]: e.target.value }, false)}
        onBlur={onRunQuery}
      />
    </InlineField>
  );
  const number = (key: 'limit' | 'minScore', label: string, placeholder: string) => (
    <InlineField label={label} labelWidth={W}>
      <Input
        id={`query-editor-${key}`}
        width={12}
        type="number"
        value={query[key] ?? ''}
        placeholder={placeholder}
        onChange={(e: ChangeEvent<HTMLInputElement>) =>
          set({ [key]: e.target.value === '' ? undefined : Number(e.target.value) }, false)
        }
        onBlur={onRunQuery}
      />
    </InlineField>
  );
  const choice = (key: keyof McpwatchQuery, label: string, options: Array<ComboboxOption<string>>) => (
    <InlineField label={label} labelWidth={W}>
      <Combobox
        id={`query-editor-${key}`}
        width={20}
        options={options}
        value={(query[key] as string | undefined) ?? ''}
        createCustomValue
        onChange={(o) => set({ [key]: o.value })}
      />
    </InlineField>
  );

  const agent = text('agent', 'Agent', 'all agents', 'An agent id or a template variable such as $agent');
  const server = text('server', 'Server', 'all servers');
  const tool = text('tool', 'Tool', 'all tools');
  const step = text('step', 'Step', 'auto', 'Bucket width, e.g. 5m; by default from the panel interval');

  let fields: React.ReactNode = null;
  switch (query.queryType) {
    case 'sessions':
      fields = [agent, server, tool, number('minScore', 'Min score', '0'), number('limit', 'Limit', '100')];
      break;
    case 'session_events':
      fields = [text('session', 'Session', 'required', 'A session id or a variable such as $session'), number('limit', 'Limit', '1000')];
      break;
    case 'anomalies':
      fields = [
        agent,
        server,
        text('session', 'Session', 'all sessions'),
        text('kind', 'Kind', 'all kinds', 'One kind or several, comma-separated, e.g. new_tool,tool_drift'),
        choice('minSeverity', 'Min severity', SEVERITIES),
        number('minScore', 'Min score', '0'),
        number('limit', 'Limit', '100'),
      ];
      break;
    case 'agents':
      fields = [number('limit', 'Limit', '100')];
      break;
    case 'agent_rate':
      fields = [agent, step];
      break;
    case 'agent_profile':
      fields = [agent, choice('section', 'Section', SECTIONS)];
      break;
    case 'agent_sizes':
      fields = [agent, choice('direction', 'Direction', DIRECTIONS), number('limit', 'Sessions', '20')];
      break;
    case 'timeseries': {
      const metric = query.metric ?? 'calls';
      fields = [
        choice('metric', 'Metric', METRICS),
        choice('by', 'Split by', SPLITS[metric] ?? opts('')),
        agent,
        ...(metric === 'calls' || metric === 'errors' ? [server, tool] : metric === 'anomalies' ? [server] : []),
        step,
        number('limit', 'Max series', '20'),
      ];
      break;
    }
    case 'deliveries':
      fields = [text('sink', 'Sink', 'all sinks'), choice('status', 'Status', DELIVERY_STATUSES), number('limit', 'Limit', '100')];
      break;
    case 'values':
      fields = [choice('field', 'Values of', FIELDS), ...(query.field && query.field !== 'agents' ? [agent] : [])];
      break;
  }

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField label="Query" labelWidth={W}>
          <Combobox
            id="query-editor-query-type"
            width={30}
            options={QUERY_TYPES}
            value={query.queryType ?? null}
            onChange={(o) => set({ queryType: o.value, ...(o.value === 'timeseries' && !query.metric ? { metric: 'calls' } : {}) })}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>{React.Children.toArray(fields)}</InlineFieldRow>
    </Stack>
  );
}
