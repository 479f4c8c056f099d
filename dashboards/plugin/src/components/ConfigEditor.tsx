import React, { ChangeEvent } from 'react';
import { FieldSet, InlineField, InlineSwitch, Input, SecretInput, SecretTextArea } from '@grafana/ui';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { McpwatchOptions, McpwatchSecureOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<McpwatchOptions, McpwatchSecureOptions>;

const LABEL_WIDTH = 20;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;

  const setJson = (patch: Partial<McpwatchOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const setSecret = (key: keyof McpwatchSecureOptions, value: string) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: value } });
  const resetSecret = (key: keyof McpwatchSecureOptions) =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });

  return (
    <>
      <FieldSet label="mcpwatch API">
        <InlineField
          label="URL"
          labelWidth={LABEL_WIDTH}
          tooltip="The mcpwatch API address as Grafana's server reaches it (api.listen; default port 7410)"
        >
          <Input
            id="config-editor-url"
            width={50}
            value={options.url}
            placeholder="http://127.0.0.1:7410"
            onChange={(e: ChangeEvent<HTMLInputElement>) => onOptionsChange({ ...options, url: e.target.value })}
          />
        </InlineField>
        <InlineField
          label="Token"
          labelWidth={LABEL_WIDTH}
          tooltip="One of mcpwatch's api.tokens, sent as a bearer token. Stored encrypted; never sent back to the browser."
        >
          <SecretInput
            id="config-editor-token"
            width={50}
            isConfigured={!!secureJsonFields?.token}
            value={secureJsonData?.token ?? ''}
            placeholder="required when mcpwatch sets api.tokens"
            onChange={(e: ChangeEvent<HTMLInputElement>) => setSecret('token', e.target.value)}
            onReset={() => resetSecret('token')}
          />
        </InlineField>
        <InlineField label="Timeout (s)" labelWidth={LABEL_WIDTH} tooltip="HTTP timeout per API call (default 30)">
          <Input
            id="config-editor-timeout"
            width={12}
            type="number"
            value={jsonData.timeout ?? ''}
            placeholder="30"
            onChange={(e: ChangeEvent<HTMLInputElement>) =>
              setJson({ timeout: e.target.value === '' ? undefined : Number(e.target.value) })
            }
          />
        </InlineField>
      </FieldSet>
      <FieldSet label="TLS (when mcpwatch sets api.tls)">
        <InlineField label="CA certificate" labelWidth={LABEL_WIDTH} tooltip="Verify the API's certificate with this CA">
          <InlineSwitch
            id="config-editor-tls-ca"
            value={!!jsonData.tlsAuthWithCACert}
            onChange={(e) => setJson({ tlsAuthWithCACert: e.currentTarget.checked })}
          />
        </InlineField>
        {jsonData.tlsAuthWithCACert && (
          <InlineField label="CA (PEM)" labelWidth={LABEL_WIDTH}>
            <SecretTextArea
              id="config-editor-tls-ca-cert"
              cols={60}
              rows={6}
              isConfigured={!!secureJsonFields?.tlsCACert}
              value={secureJsonData?.tlsCACert ?? ''}
              placeholder="-----BEGIN CERTIFICATE-----"
              onChange={(e: ChangeEvent<HTMLTextAreaElement>) => setSecret('tlsCACert', e.target.value)}
              onReset={() => resetSecret('tlsCACert')}
            />
          </InlineField>
        )}
        <InlineField label="Server name" labelWidth={LABEL_WIDTH} tooltip="Expected name in the API's certificate, if not the URL's host">
          <Input
            id="config-editor-server-name"
            width={50}
            value={jsonData.serverName ?? ''}
            onChange={(e: ChangeEvent<HTMLInputElement>) => setJson({ serverName: e.target.value })}
          />
        </InlineField>
        <InlineField label="Skip TLS verify" labelWidth={LABEL_WIDTH} tooltip="Do not verify the API's certificate (testing only)">
          <InlineSwitch
            id="config-editor-tls-skip-verify"
            value={!!jsonData.tlsSkipVerify}
            onChange={(e) => setJson({ tlsSkipVerify: e.currentTarget.checked })}
          />
        </InlineField>
      </FieldSet>
    </>
  );
}
