import { DataSourceInstanceSettings, CoreApp, ScopedVars, DataSourceVariableSupport } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { McpwatchQuery, McpwatchOptions, DEFAULT_QUERY, TEMPLATED_FIELDS } from './types';

/** Template variables use the data source's own query editor with the "values" query type. */
export class McpwatchVariableSupport extends DataSourceVariableSupport<DataSource> {
  getDefaultQuery(): Partial<McpwatchQuery> {
    return { queryType: 'values', field: 'agents' };
  }
}

export class DataSource extends DataSourceWithBackend<McpwatchQuery, McpwatchOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<McpwatchOptions>) {
    super(instanceSettings);
    this.variables = new McpwatchVariableSupport();
  }

  getDefaultQuery(_: CoreApp): Partial<McpwatchQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: McpwatchQuery, scopedVars: ScopedVars): McpwatchQuery {
    const out: McpwatchQuery = { ...query };
    const srv = getTemplateSrv();
    for (const key of TEMPLATED_FIELDS) {
      const value = out[key];
      if (typeof value === 'string' && value !== '') {
        out[key] = srv.replace(value, scopedVars);
      }
    }
    return out;
  }

  filterQuery(query: McpwatchQuery): boolean {
    return !query.hide && !!query.queryType;
  }
}
