#pragma once

// The forge's sections of the server's config file (`nightshift serve --config FILE`, read once
// by config/config.h, which hands each section to the part that owns it):
//
//   review: {protected_paths, max_files, max_lines, max_binary_bytes, scan_secrets}
//   review_repositories: {NAME: {…}}        # per repository, over `review`
//   identity: {name, email}                 # the platform's git identity
//   forges: {NAME: {type, api_url, project, token_env | app_id + installation_id +
//                   private_key_file, labels, draft}}
//
// docs/review.md and docs/forges.md are the reference. Each parser records every problem in
// `errors` and returns what it could read: the result is whole only when none was recorded.

#include <map>
#include <memory>
#include <string>

#include "core/config_node.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "forge/policy.h"
#include "forge/remote.h"

namespace nightshift::forge {

// A review policy (`review:`, or one repository's), over `base`. Only the values `node` sets
// are checked: `base` is the defaults or a policy read (and checked) before.
ReviewPolicy ParseReviewPolicy(const ConfigNode& node, ReviewPolicy base, ConfigErrors& errors);

// `review_repositories:` — each repository's policy, over `base` (the `review:` one).
std::map<std::string, ReviewPolicy> ParseReviewPolicies(const ConfigNode& repositories,
                                                        const ReviewPolicy& base,
                                                        ConfigErrors& errors);

// `identity:` — over the default identity.
Identity ParseIdentity(const ConfigNode& node, ConfigErrors& errors);

// `forges:` — by repository name. token_env is read from `environment` and private_key_file from
// the file; each link is checked by making its forge client (MakeRemoteForge), which sends
// nothing.
std::map<std::string, ForgeLink> ParseForgeLinks(const ConfigNode& forges,
                                                 const Environment& environment,
                                                 ConfigErrors& errors);

// The client of the link's forge (MakeGitHub or MakeGitLab by its type). InvalidArgument for an
// unknown type and whatever the maker refuses.
StatusOr<std::unique_ptr<RemoteForge>> MakeRemoteForge(const ForgeLink& link);

}  // namespace nightshift::forge
