#pragma once

// The verbs of `nightshift`, each declared by its own Add…Verb function (command_line.h says how).
// RunCli adds them in the order `nightshift --help` lists them. A new verb is a new function here,
// in the file of its family, and one line in RunCli.

#include "cli/command_line.h"
#include "cli/commands.h"

namespace nightshift::cli {

// Local verbs (local_verbs.cc): no server.
void AddServeVerb(CommandLine& cli, const ServeFn& serve);  // serve
void AddSandboxVerbs(CommandLine& cli);                     // sandbox exec
void AddConfigVerb(CommandLine& cli);                       // config check
void AddCronVerb(CommandLine& cli);                         // cron next

// Policies (policy_verbs.cc): policy test, offline.
void AddPolicyVerbs(CommandLine& cli);

// Repositories (repo_verbs.cc): repo add, repo list, repo remove.
void AddRepoVerbs(CommandLine& cli);

// Runs (run_verbs.cc).
void AddRunVerb(CommandLine& cli);       // run
void AddPrebuildVerb(CommandLine& cli);  // prebuild
void AddRunsVerb(CommandLine& cli);      // runs
void AddShowVerb(CommandLine& cli);      // show
void AddLogsVerb(CommandLine& cli);      // logs
void AddCancelVerb(CommandLine& cli);    // cancel
void AddPauseVerbs(CommandLine& cli);    // pause, resume

// Triggers (trigger_verbs.cc): events, events replay, schedule list.
void AddTriggerVerbs(CommandLine& cli);

// Identities (identity_verbs.cc): login, user add|list|disable, token create|list|revoke.
void AddIdentityVerbs(CommandLine& cli);

// Secrets (secret_verbs.cc): secret set|list|rm.
void AddSecretVerbs(CommandLine& cli);

// Change requests (cr_verbs.cc): cr list, show, diff, comment, approve, merge, close.
void AddChangeRequestVerbs(CommandLine& cli);

}  // namespace nightshift::cli
