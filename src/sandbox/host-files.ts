// The raw kernel and /proc files that detection reads, as one record: the input of every pure detector.

/** Raw contents of the files detection reads; `undefined` where the file is absent. */
export interface HostFiles {
  platform: NodeJS.Platform;
  /** /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10+). */
  apparmorRestrictUserns?: string;
  /** /proc/sys/user/max_user_namespaces */
  maxUserNamespaces?: string;
  /** /proc/sys/kernel/unprivileged_userns_clone (Debian and linux-hardened patch). */
  unprivilegedUsernsClone?: string;
  /** /sys/kernel/security/lsm: the active LSMs, comma separated. */
  lsm?: string;
  /** /proc/self/status */
  procSelfStatus?: string;
  /** /proc/1/cgroup */
  proc1Cgroup?: string;
  /** /sys/fs/selinux/enforce */
  selinuxEnforce?: string;
  /** Whether /proc/self/ns/user exists: false on kernels built without CONFIG_USER_NS. */
  userNsFile: boolean;
  /** Whether /proc/sys/kernel/grsecurity exists (a grsecurity kernel). */
  grsecurity: boolean;
  /** Container markers: /.dockerenv, /run/.containerenv, the `container` variable systemd-nspawn and podman set. */
  dockerenv: boolean;
  containerenv: boolean;
  containerVar?: string;
  /** /proc/self/mountinfo: the root's file system (overlay in a container) and over-mounts that mask /proc. */
  mountinfo?: string;
  /** Whether /proc/cpuinfo carries the `hypervisor` flag (a VM, or a container on one). */
  hypervisor?: boolean;
  /** /proc/self/attr/current: the AppArmor (or SELinux) label this process runs under, e.g. "docker-default (enforce)". */
  lsmLabel?: string;
}
