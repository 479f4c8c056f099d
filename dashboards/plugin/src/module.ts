import { DataSourcePlugin } from '@grafana/data';
import { DataSource } from './datasource';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { McpwatchQuery, McpwatchOptions } from './types';

export const plugin = new DataSourcePlugin<DataSource, McpwatchQuery, McpwatchOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
