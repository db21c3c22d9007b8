#include "alerts/http_sink.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <stdexcept>

#include "lib/util/time.h"

namespace ringwatch::alerts {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_map(Writer& writer, const char* key, const LabelSet& values) {
  writer.Key(key);
  writer.StartObject();
  for (const auto& [name, value] : values) {
    writer.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  writer.EndObject();
}

void write_string(Writer& writer, const char* key, const std::string& value) {
  writer.Key(key);
  writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_times(Writer& writer, const Alert& alert) {
  write_string(writer, "startsAt", util::format_rfc3339_ms(alert.starts_at));
  if (alert.ends_at != TimePoint{})
    write_string(writer, "endsAt", util::format_rfc3339_ms(alert.ends_at));
  if (!alert.generator_url.empty()) write_string(writer, "generatorURL", alert.generator_url);
}

// The sink's options as the delivery's; throws for a bad name or URL.
http::DeliveryOptions delivery_options(SinkFormat format, HttpSinkOptions options) {
  if (options.name.empty()) throw std::invalid_argument("name: expected a name");
  http::Url url;
  try {
    url = http::parse_url(options.url);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("url: ") + error.what());
  }
  if (format == SinkFormat::alertmanager_v2) {
    std::string prefix = url.target.substr(0, url.target.find('?'));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    url.target = prefix + "/api/v2/alerts";
  }
  return {.name = options.name,
          .url = std::move(url),
          .tls = std::move(options.tls),
          .headers = std::move(options.headers),
          .deadlines = options.deadlines,
          .queue_capacity = options.queue_capacity,
          .initial_backoff = options.initial_backoff,
          .max_backoff = options.max_backoff,
          .max_attempts = options.max_attempts,
          .user_agent = std::move(options.user_agent),
          .observer = std::move(options.observer)};
}

}  // namespace

std::string encode_alertmanager_v2(const std::vector<AlertEvent>& events) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartArray();
  for (const AlertEvent& event : events) {
    writer.StartObject();
    write_map(writer, "labels", event.alert.labels);
    write_map(writer, "annotations", event.alert.annotations);
    write_times(writer, event.alert);
    writer.EndObject();
  }
  writer.EndArray();
  return buffer.GetString();
}

std::string encode_webhook(const std::vector<AlertEvent>& events) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_string(writer, "schema", "ringwatch.alerts/v1");
  writer.Key("alerts");
  writer.StartArray();
  for (const AlertEvent& event : events) {
    writer.StartObject();
    write_string(writer, "event", to_string(event.kind));
    write_string(writer, "status",
                 event.alert.state == AlertState::resolved ? "resolved" : "firing");
    write_string(writer, "fingerprint", event.alert.fingerprint());
    write_map(writer, "labels", event.alert.labels);
    write_map(writer, "annotations", event.alert.annotations);
    write_times(writer, event.alert);
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
  return buffer.GetString();
}

HttpSink::HttpSink(SinkFormat format, HttpSinkOptions options)
    : format_(format), include_resends_(options.include_resends) {
  const std::string label = "sink " + (options.name.empty() ? std::string("?") : options.name);
  try {
    delivery_ = std::make_unique<http::Delivery>(delivery_options(format, std::move(options)));
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(label + ": " + error.what());
  }
}

HttpSink::~HttpSink() = default;

void HttpSink::send(const std::vector<AlertEvent>& events) {
  std::vector<AlertEvent> batch;
  batch.reserve(events.size());
  for (const AlertEvent& event : events) {
    if (event.kind == EventKind::resent && format_ == SinkFormat::webhook && !include_resends_) {
      continue;
    }
    batch.push_back(event);
  }
  if (batch.empty()) return;
  delivery_->post({.body = format_ == SinkFormat::alertmanager_v2 ? encode_alertmanager_v2(batch)
                                                                  : encode_webhook(batch),
                   .items = batch.size(),
                   .description = std::to_string(batch.size()) + " alert(s)"});
}

bool HttpSink::flush(std::chrono::milliseconds timeout) {
  return delivery_->flush(timeout);
}

SinkStats HttpSink::stats() const {
  return delivery_->stats();
}

const std::string& HttpSink::name() const {
  return delivery_->name();
}

const http::Url& HttpSink::url() const {
  return delivery_->url();
}

std::unique_ptr<HttpSink> make_alertmanager_sink(HttpSinkOptions options) {
  return std::make_unique<HttpSink>(SinkFormat::alertmanager_v2, std::move(options));
}

std::unique_ptr<HttpSink> make_webhook_sink(HttpSinkOptions options) {
  return std::make_unique<HttpSink>(SinkFormat::webhook, std::move(options));
}

}  // namespace ringwatch::alerts
