#pragma once

// Run events on a terminal (`logs`, `run --follow`): log lines to the stream they came from, every
// other kind as a short "[kind] ..." line on stderr, through one printer per kind of the event
// catalogue (api/events.h). A kind the table does not know (from a newer server), or an event
// whose payload does not have its kind's shape, shows as "[kind] <its JSON>".

#include <iostream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "api/resources.h"
#include "core/status.h"

namespace nightshift::cli {

class EventPrinter {
 public:
  // With `json`, each event is one line of JSON on `out`, as the API sent it. With `live`, every
  // line is flushed at once (following a run).
  EventPrinter(bool json, bool live, std::ostream& out = std::cout, std::ostream& err = std::cerr);

  Status Print(const api::Event& event);

 private:
  bool json_;
  bool live_;
  std::ostream& out_;
  std::ostream& err_;
};

// The kinds the printer table has an entry for (showing them, or deliberately not: the requests to
// the model are in the responses and tool results; --json has everything).
std::vector<std::string_view> PrintedKinds();

}  // namespace nightshift::cli
