/** InstanceSpec (DESIGN.md), as validated by api-spec/rpc/_defs.json#/$defs/InstanceSpec. */
export interface InstanceSpec {
  uuid: string;
  name: string;
  project_id: string;
  image: string;
  flavor: {
    vcpus: number;
    memory_mb: number;
    swap_mb?: number;
    cpu_policy?: 'dedicated' | 'shared';
    cpu_shares?: number;
    pids_limit?: number;
  };
  networks: Array<{ network: string; fixed_ip?: string }>;
  hostname?: string;
  volumes?: Array<{ host_path: string; container_path: string; read_only?: boolean }>;
  io?: { read_bps?: number; write_bps?: number; read_iops?: number; write_iops?: number };
  net?: { egress_kbit?: number; ingress_kbit?: number };
  env?: Record<string, string>;
  command?: string[];
  labels?: Record<string, string>;
}

export const MB = 1024 * 1024;
