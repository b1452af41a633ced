#pragma once

// The sandbox's user namespace, which only its payload (the process that execs the command)
// enters: root inside maps to one unprivileged host uid and gid, owns none of the sandbox's other
// namespaces, and holds no capability — its bounding set is emptied, so no exec regains one.
//
// PID 1 stays root of the host's user namespace and writes the payload's maps (WriteIdMaps); the
// payload does the rest. Steps are NS_CHILD (raw_syscall.h). Internal to src/sandbox.

#include <sys/types.h>

#include <string>

#include "sandbox/contain_step.h"

namespace nightshift::sandbox::internal {

struct IdMaps {
  std::string uid_map, gid_map;  // "0 <host id> 1\n"
};
IdMaps MapRootTo(uid_t host_uid, gid_t host_gid);

// In PID 1: writes the maps of `payload`'s user namespace through `proc` (the sandbox's own
// /proc, mounted but not yet pivoted into: `payload` is the pid in the sandbox's namespace),
// denying setgroups first.
NS_CHILD ContainFailure WriteIdMaps(const char* proc, pid_t payload, const IdMaps& maps);

// In the payload, while still root of the host's user namespace: drop the supplementary groups
// it inherited from the supervisor (a server started with sudo has root's, gid 0 among them).
// Unmapped, they would still count on the host's files, and nothing inside could drop them:
// setgroups is denied there.
NS_CHILD ContainFailure DropSupplementaryGroups();

// In the payload, in this order: empty the capability bounding set (needs CAP_SETPCAP, so while
// still privileged in the new namespace); once the maps are written, become root inside; then
// clear the effective, permitted, inheritable and ambient sets.
NS_CHILD ContainFailure DropBoundingSet();
NS_CHILD ContainFailure BecomeRoot();
NS_CHILD ContainFailure ClearCapabilities();

}  // namespace nightshift::sandbox::internal
