#include "api/events.h"

namespace nightshift::api {
namespace {

template <EventPayload E>
EventKindInfo Info() {
  return {E::kKind, E::kSource, E::kMeaning, Describe<E>()};
}

template <typename... E>
std::vector<EventKindInfo> Catalogue(std::tuple<E...>*) {
  return {Info<E>()...};
}

}  // namespace

const std::vector<EventKindInfo>& EventCatalogue() {
  static const auto* const kCatalogue =
      new std::vector<EventKindInfo>(Catalogue(static_cast<EventPayloads*>(nullptr)));
  return *kCatalogue;
}

const EventKindInfo* FindEventKind(std::string_view kind) {
  for (const EventKindInfo& info : EventCatalogue()) {
    if (info.kind == kind) return &info;
  }
  return nullptr;
}

std::string EventRecord::Serialize() const {
  return data_.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace nightshift::api
