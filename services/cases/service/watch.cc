#include "services/cases/service/watch.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases {

using Response = v1::WatchCaseEventsResponse;
using server::kTooManyWatchStreamsReason;

// The shared state of one stream. The reactor pointer is valid until the
// reactor's OnDone; it is only used for StartWrite/Finish by whoever set
// in_flight (or finished) under mu.
struct WatchHub::Stream {
  absl::Mutex mu;
  grpc::ServerWriteReactor<Response>* reactor ABSL_GUARDED_BY(mu) = nullptr;
  server::RequestContext rc;
  v1::WatchCaseEventsRequest request;
  bool resolved = false;   // pump thread only
  WatchStart start;        // pump thread only, after resolved
  int64_t next_after = 0;  // pump thread only: read up to this cursor
  absl::Time last_enqueue = absl::InfinitePast();  // pump thread only

  std::deque<Response> buffer ABSL_GUARDED_BY(mu);
  Response current ABSL_GUARDED_BY(mu);
  bool in_flight ABSL_GUARDED_BY(mu) = false;
  int64_t written_cursor ABSL_GUARDED_BY(mu) = 0;
  absl::Time last_progress ABSL_GUARDED_BY(mu) = absl::Now();
  bool finish_pending ABSL_GUARDED_BY(mu) = false;
  grpc::Status finish_status ABSL_GUARDED_BY(mu);
  bool finished ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;
};

namespace {

int64_t CursorOf(const Response& r) {
  return r.has_event() ? r.event().cursor() : r.heartbeat().cursor();
}

// Starts the next write or the finish, if the stream is idle.
void Kick(const std::shared_ptr<WatchHub::Stream>& s) {
  grpc::ServerWriteReactor<Response>* reactor = nullptr;
  enum { kNone, kWrite, kFinish } action = kNone;
  grpc::Status status;
  {
    absl::MutexLock lock(&s->mu);
    if (s->finished || s->reactor == nullptr) return;
    if (s->finish_pending) {
      s->finished = true;
      status = s->finish_status;
      reactor = s->reactor;
      action = kFinish;
    } else if (!s->in_flight && !s->buffer.empty()) {
      s->current = std::move(s->buffer.front());
      s->buffer.pop_front();
      s->in_flight = true;
      reactor = s->reactor;
      action = kWrite;
    }
  }
  // Only this caller may use the reactor now: in_flight (or finished) keeps
  // everyone else away, and OnDone cannot run before Finish.
  if (action == kWrite) reactor->StartWrite(&s->current);
  if (action == kFinish) reactor->Finish(status);
}

void EndWith(const std::shared_ptr<WatchHub::Stream>& s,
             const absl::Status& status, absl::string_view domain) {
  {
    absl::MutexLock lock(&s->mu);
    if (s->finish_pending || s->finished) return;
    s->finish_pending = true;
    s->finish_status = server::ToClientStatus(status, domain);
  }
  Kick(s);
}

class WatchReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  // `release` runs once when the stream is done (before `wake`).
  WatchReactor(std::shared_ptr<WatchHub::Stream> stream,
               std::function<void()> wake, std::function<void()> release)
      : stream_(std::move(stream)),
        wake_(std::move(wake)),
        release_(std::move(release)) {}

  void OnWriteDone(bool ok) override {
    bool refill = false;
    {
      absl::MutexLock lock(&stream_->mu);
      stream_->in_flight = false;
      if (ok) {
        stream_->written_cursor = CursorOf(stream_->current);
        stream_->last_progress = absl::Now();
        refill = stream_->buffer.size() <= 1;
      } else if (!stream_->finish_pending) {
        stream_->finish_pending = true;
        stream_->finish_status =
            grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    Kick(stream_);
    if (refill) wake_();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&stream_->mu);
      if (!stream_->finish_pending) {
        stream_->finish_pending = true;
        stream_->finish_status =
            grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
    }
    Kick(stream_);
  }

  void OnDone() override {
    if (release_) release_();
    {
      absl::MutexLock lock(&stream_->mu);
      stream_->reactor = nullptr;
      stream_->done = true;
    }
    wake_();
    delete this;
  }

 private:
  std::shared_ptr<WatchHub::Stream> stream_;
  std::function<void()> wake_;
  std::function<void()> release_;
};

class RefusingReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusingReactor(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

WatchHub::WatchHub(storage::Database& db, AccessChecker* access,
                   Resolver resolver, WatchOptions options)
    : db_(db),
      resolver_(std::move(resolver)),
      options_(std::move(options)),
      decisions_(access, SharedAccessDecisions::Options()) {
  pump_ = std::thread([this] { Loop(); });
}

WatchHub::~WatchHub() {
  Drain();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  pump_.join();
}

grpc::ServerWriteReactor<Response>* WatchHub::Refuse(const absl::Status& status,
                                                     absl::string_view domain) {
  return new RefusingReactor(server::ToClientStatus(status, domain));
}

absl::Status WatchHub::CountStream(const std::string& agency) {
  int& of_agency = streams_by_agency_[agency];
  absl::Status refused;
  if (options_.max_streams_per_agency > 0 &&
      of_agency >= options_.max_streams_per_agency) {
    refused = ErrorWithReason(
        absl::StatusCode::kResourceExhausted, kTooManyWatchStreamsReason,
        absl::StrCat("the calling agency has ", of_agency,
                     " watch streams open, its limit; close one or retry "
                     "later"),
        {{"limit", "watch_streams_per_agency"},
         {"value", absl::StrCat(options_.max_streams_per_agency)}});
  } else if (options_.max_streams_total > 0 &&
             counted_streams_ >= options_.max_streams_total) {
    refused = ErrorWithReason(
        absl::StatusCode::kResourceExhausted, kTooManyWatchStreamsReason,
        "the server has as many watch streams open as it serves; retry later",
        {{"limit", "watch_streams_total"},
         {"value", absl::StrCat(options_.max_streams_total)}});
  }
  if (!refused.ok()) {
    if (of_agency == 0) streams_by_agency_.erase(agency);
    return WithRetryDelay(refused, kWatchStreamRetryDelay);
  }
  ++of_agency;
  ++counted_streams_;
  return absl::OkStatus();
}

void WatchHub::ReleaseStream(const std::string& agency) {
  absl::MutexLock lock(&mu_);
  --counted_streams_;
  auto it = streams_by_agency_.find(agency);
  if (it != streams_by_agency_.end() && --it->second <= 0) {
    streams_by_agency_.erase(it);
  }
}

grpc::ServerWriteReactor<Response>* WatchHub::Open(
    server::RequestContext rc, const v1::WatchCaseEventsRequest& request) {
  // The caps first: a refused stream costs no more than this.
  const std::string agency = rc.caller.agency_id;
  bool counted = false;
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && !draining_) {
      refused = CountStream(agency);
      counted = refused.ok();
    }
  }
  if (!refused.ok()) {
    if (options_.on_refused) {
      options_.on_refused(agency, kTooManyWatchStreamsReason);
    }
    return Refuse(refused, options_.error_domain);
  }
  auto stream = std::make_shared<Stream>();
  stream->rc = std::move(rc);
  stream->request = request;
  std::function<void()> release;
  if (counted) release = [this, agency] { ReleaseStream(agency); };
  auto* reactor = new WatchReactor(
      stream, [this] { Notify(); }, std::move(release));
  {
    absl::MutexLock lock(&stream->mu);
    stream->reactor = reactor;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || draining_) {
      EndWith(stream,
              ErrorWithReason(absl::StatusCode::kUnavailable, "SERVER_DRAINING",
                              "the server is shutting down"),
              options_.error_domain);
      return reactor;
    }
    streams_.push_back(stream);
    wake_ = true;
  }
  return reactor;
}

void WatchHub::Notify() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void WatchHub::Drain() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    streams = streams_;
  }
  for (const auto& s : streams) {
    EndWith(s,
            ErrorWithReason(absl::StatusCode::kUnavailable, "SERVER_DRAINING",
                            "the server is shutting down; reconnect with your "
                            "last cursor"),
            options_.error_domain);
  }
}

int WatchHub::open_streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

void WatchHub::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return wake_ || stopping_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll);
      if (stopping_ && streams_.empty()) return;
      if (stopping_) {
        // Drop streams whose reactors are gone; the rest are finishing.
        streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                      [](const std::shared_ptr<Stream>& s) {
                                        absl::MutexLock l(&s->mu);
                                        return s->done;
                                      }),
                       streams_.end());
        if (streams_.empty()) return;
        continue;
      }
      wake_ = false;
    }
    std::vector<std::shared_ptr<Stream>> streams;
    {
      absl::MutexLock lock(&mu_);
      streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                    [](const std::shared_ptr<Stream>& s) {
                                      absl::MutexLock l(&s->mu);
                                      return s->done;
                                    }),
                     streams_.end());
      streams = streams_;
    }
    if (streams.empty()) continue;
    int64_t latest = 0;
    absl::Status read = storage::RunInTransaction(
        db_,
        [&](storage::Transaction& tx) -> absl::Status {
          absl::StatusOr<int64_t> c = LatestCursor(tx);
          if (!c.ok()) return c.status();
          latest = *c;
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!read.ok()) {
      server::Log(server::LogLevel::kError, "watch: cannot read the log",
                  {{"error", std::string(read.message())}});
      continue;
    }
    // New events are read once and handed to every stream that is up to
    // date, so a commit costs one read however many watchers there are.
    Batch batch;
    bool have_batch = false;
    constexpr int64_t kMaxBatch = 1000;
    if (seen_ >= 0 && latest > seen_ && latest - seen_ <= kMaxBatch) {
      batch.after = seen_;
      batch.upto = latest;
      absl::Status got = storage::RunInTransaction(
          db_,
          [&](storage::Transaction& tx) -> absl::Status {
            absl::StatusOr<std::vector<LoggedEvent>> events =
                ReadCaseEventRange(tx, batch.after, batch.upto);
            if (!events.ok()) return events.status();
            batch.events = *std::move(events);
            return absl::OkStatus();
          },
          storage::TxMode::kReadOnly);
      have_batch = got.ok();
    }
    seen_ = latest;
    const absl::Time now = absl::Now();
    for (const auto& s : streams) {
      Serve(s, latest, have_batch ? &batch : nullptr, now);
    }
  }
}

// One pass of the pump over one stream: resolve its start, cut it off when
// stalled, hand it its share of the batch, page its own events, add a
// heartbeat. Kept in one piece (over 100 lines): every step spends the same
// buffer room and moves the same cursor, and their order is the protocol.
void WatchHub::Serve(const std::shared_ptr<Stream>& s, int64_t latest,
                     const Batch* batch, absl::Time now) {
  {
    absl::MutexLock lock(&s->mu);
    if (s->finish_pending || s->finished || s->done) return;
  }
  if (!s->resolved) {
    absl::StatusOr<WatchStart> start = resolver_(s->rc, s->request);
    if (!start.ok()) {
      EndWith(s, start.status(), options_.error_domain);
      return;
    }
    s->start = *std::move(start);
    s->resolved = true;
    s->next_after = s->start.after_cursor;
    s->last_enqueue = now;
  }
  int room = 0;
  {
    absl::MutexLock lock(&s->mu);
    room = options_.buffer_messages - static_cast<int>(s->buffer.size()) -
           (s->in_flight ? 1 : 0);
    if (room <= 0 && s->next_after < latest &&
        now - s->last_progress > options_.stall_limit) {
      const int64_t resume =
          s->written_cursor > 0 ? s->written_cursor : s->start.after_cursor;
      s->buffer.clear();
      s->finish_pending = true;
      s->finish_status = server::ToClientStatus(
          ErrorWithReason(absl::StatusCode::kResourceExhausted,
                          "CONSUMER_TOO_SLOW",
                          absl::StrCat("the stream's buffer is full; resume "
                                       "after cursor ",
                                       resume),
                          {{"resume_after_cursor", absl::StrCat(resume)}}),
          options_.error_domain);
    }
  }
  if (batch != nullptr && room > 0 && s->next_after == batch->after) {
    const std::string case_name =
        s->start.case_id.empty() ? ""
                                 : absl::StrCat("cases/", s->start.case_id);
    std::vector<const LoggedEvent*> mine;
    for (const LoggedEvent& e : batch->events) {
      if (!case_name.empty() && e.event.case_name() != case_name) continue;
      if (std::find(e.audience.begin(), e.audience.end(), s->start.agency) !=
          e.audience.end()) {
        mine.push_back(&e);
      }
    }
    if (static_cast<int>(mine.size()) <= room) {
      std::vector<Response> out;
      for (const LoggedEvent* e : mine) {
        Response r;
        *r.mutable_event() = e->event;
        Withhold(s, r.mutable_event());
        out.push_back(std::move(r));
      }
      s->next_after = batch->upto;
      room -= static_cast<int>(out.size());
      if (!out.empty()) {
        s->last_enqueue = now;
        absl::MutexLock lock(&s->mu);
        if (s->buffer.empty() && !s->in_flight) s->last_progress = now;
        for (Response& r : out) s->buffer.push_back(std::move(r));
      }
    }
  }
  while (room > 0 && s->next_after < latest) {
    const int want = std::min(room, 256);
    CaseEventPage page;
    absl::Status read = storage::RunInTransaction(
        db_,
        [&](storage::Transaction& tx) -> absl::Status {
          absl::StatusOr<CaseEventPage> got = ReadCaseEventPage(
              tx, s->start.agency, s->next_after, s->start.case_id, want);
          if (!got.ok()) return got.status();
          page = *std::move(got);
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!read.ok()) {
      server::Log(server::LogLevel::kError, "watch: cannot read events",
                  {{"error", std::string(read.message())}});
      break;
    }
    // Rows of erased persons are read but not sent: completeness and the
    // cursor go by the rows read, so the stream moves past them.
    const bool complete = page.rows_read < want;
    const int64_t last = page.rows_read > 0 ? page.last_cursor : s->next_after;
    std::vector<Response> out;
    out.reserve(page.events.size());
    for (v1::CaseEvent& e : page.events) {
      Withhold(s, &e);
      Response r;
      *r.mutable_event() = std::move(e);
      out.push_back(std::move(r));
    }
    // A short page means every visible event up to `latest` (read before
    // the page) has been read: commits draw cursors in commit order.
    s->next_after = complete ? std::max(last, latest) : last;
    room -= static_cast<int>(out.size());
    if (!out.empty()) {
      s->last_enqueue = now;
      absl::MutexLock lock(&s->mu);
      if (s->buffer.empty() && !s->in_flight) s->last_progress = now;
      for (Response& r : out) s->buffer.push_back(std::move(r));
    }
    if (complete) break;
  }
  {
    absl::MutexLock lock(&s->mu);
    if (s->buffer.empty() && !s->in_flight &&
        now - s->last_enqueue >= options_.heartbeat) {
      Response r;
      r.mutable_heartbeat()->set_cursor(s->next_after);
      *r.mutable_heartbeat()->mutable_heartbeat_time() = api::ToTimestamp(now);
      s->buffer.push_back(std::move(r));
      s->last_enqueue = now;
    }
  }
  Kick(s);
}

SharedAccessDecisions::SharedAccessDecisions(AccessChecker* access,
                                             Options options)
    : access_(access), options_(options) {}

AccessDecision SharedAccessDecisions::Decide(const std::string& agency,
                                             const std::string& purpose,
                                             const std::string& person,
                                             type::v1::DataCategory category,
                                             absl::Time now) {
  Key key(agency, purpose, person);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.expire < now) {
    if (it == entries_.end() && entries_.size() >= options_.max_entries) {
      for (auto e = entries_.begin(); e != entries_.end();) {
        if (e->second.expire < now) {
          entries_.erase(e++);
        } else {
          ++e;
        }
      }
      if (entries_.size() >= options_.max_entries) entries_.clear();
    }
    Entry fresh;
    fresh.expire = now + options_.ttl;
    const std::vector<type::v1::DataCategory> categories = {
        type::v1::DATA_CATEGORY_LANGUAGE, type::v1::DATA_CATEGORY_EMPLOYMENT};
    absl::StatusOr<std::vector<AccessDecision>> got =
        access_->Check(agency, person, categories, purpose,
                       {identity::v1::RELATION_CASE_PARTICIPANT},
                       now + options_.check_deadline);
    if (!got.ok()) {
      fresh.unavailable = true;
      fresh.expire = now + options_.retry;
    } else {
      for (const AccessDecision& a : *got) fresh.by_category[a.category] = a;
    }
    it = entries_.insert_or_assign(std::move(key), std::move(fresh)).first;
  }
  const Entry& e = it->second;
  AccessDecision out;
  out.category = category;
  out.denial_reason = type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE;
  if (e.unavailable) return out;
  auto found = e.by_category.find(category);
  if (found != e.by_category.end() && found->second.allowed) {
    out.allowed = true;
    out.denial_reason = type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED;
    return out;
  }
  out.denial_reason = found != e.by_category.end()
                          ? found->second.denial_reason
                          : type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED;
  if (out.denial_reason == type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED) {
    out.denial_reason = type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS;
  }
  return out;
}

void WatchHub::Withhold(const std::shared_ptr<Stream>& s,
                        v1::CaseEvent* event) {
  if (!event->has_activity_recorded()) return;
  v1::StepActivity* activity =
      event->mutable_activity_recorded()->mutable_activity();
  const type::v1::DataCategory category = activity->category();
  if (category == type::v1::DATA_CATEGORY_CASE_STATUS ||
      category == type::v1::DATA_CATEGORY_UNSPECIFIED) {
    return;
  }
  const AccessDecision d = decisions_.Decide(
      s->start.agency, s->start.purpose, event->activity_recorded().person(),
      category, absl::Now());
  if (d.allowed) return;
  const char* field = activity->has_course() ? "course" : "placement";
  activity->clear_detail();
  type::v1::Withheld* w = event->add_withheld();
  w->set_field(absl::StrCat("activity_recorded.activity.", field));
  w->set_category(category);
  w->set_reason(d.denial_reason);
}

}  // namespace lotse::cases
