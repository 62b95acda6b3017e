// See posting_gather.h. The JS side (service/posting-index.ts `gatherBeam`) passes every array zero-copy; the call
// reads the runs and writes only the candidate set's words, match codes, hash table and per-kind counts.
#include "posting_gather.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "boundary.h"

namespace sidx {
namespace {

constexpr int32_t kMaxCode = 65535;
constexpr uint8_t kExact = 0;
constexpr uint8_t kBeam = 2;
constexpr uint8_t kPrefix = 3;

template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;
};

// Views of the typed arrays boundary.h has no getter for (u8, u16, u32) and of the writable outputs; read-only
// Int32Arrays go through GetInt32Array.
template <typename T, napi_typedarray_type kType>
View<T> TypedView(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray()) throw CodedError(kErrInvalidInput, std::string(name) + " must be a typed array");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.TypedArrayType() != kType) throw CodedError(kErrInvalidInput, std::string(name) + " has the wrong element type");
  // The data pointer from the typed array itself: a SharedArrayBuffer (the posting index's folded runs,
  // posting-fold-thread.ts) is not an ArrayBuffer to napi_get_arraybuffer_info.
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_typedarray_info(value.Env(), value, nullptr, &length, &data, nullptr, nullptr) != napi_ok) {
    throw CodedError(kErrInvalidInput, std::string(name) + ": its memory cannot be read");
  }
  return {static_cast<T*>(data), length};
}

// A sorted run of (SID, key) rows: codes row-major (L per row), keys as (low, high) u32 words.
struct Run {
  const uint16_t* codes;
  const uint32_t* words;
  size_t count;
};

struct Directory {
  const int32_t* starts = nullptr;
  int depth = 0;
  int64_t radix = 0;
};

// The candidate set's arrays (CandidateSet): capacity rows, a hash of 2 x capacity slots (position + 1, 0 = empty).
struct Candidates {
  uint32_t* words;
  uint8_t* match;
  int32_t* table;
  uint32_t mask;
  int32_t* counts;
  size_t count;

  static uint32_t Hash(uint32_t lo, uint32_t hi) {
    uint32_t h = (lo ^ (hi * 0x9e3779b1u)) * 0x85ebca6bu;
    return h ^ (h >> 15);
  }

  // Enters position c (its words written) unless an equal key is held: CandidateSet #claim.
  bool Claim(size_t c) {
    const uint32_t lo = words[2 * c], hi = words[2 * c + 1];
    uint32_t h = Hash(lo, hi) & mask;
    for (int32_t e = table[h]; e != 0; e = table[h]) {
      if (words[2 * e - 2] == lo && words[2 * e - 1] == hi) return false;
      h = (h + 1) & mask;
    }
    table[h] = static_cast<int32_t>(c + 1);
    return true;
  }

  // CandidateSet addRows: rows [from, to) of `src`, new keys only, until `max`; whether fewer than max are held.
  bool AddRows(const uint32_t* src, size_t from, size_t to, uint8_t kind, size_t max) {
    size_t c = count;
    if (c >= max) return false;
    const size_t before = c;
    for (size_t r = from; r < to; r++) {
      words[2 * c] = src[2 * r];
      words[2 * c + 1] = src[2 * r + 1];
      if (!Claim(c)) continue;
      match[c] = kind;
      if (++c >= max) break;
    }
    count = c;
    counts[kind] += static_cast<int32_t>(c - before);
    return c < max;
  }
};

class Gatherer {
 public:
  Gatherer(Run main, Run delta, const uint8_t* dead, Directory dir, int L, Candidates* out)
      : main_(main), delta_(delta), dead_(dead), dir_(dir), L_(L), out_(out) {}

  // PostingIndex.visit with a Taker sink of kind `kind` and max `max`.
  void Visit(const int32_t* q, int m, size_t limit, uint8_t kind, size_t max) {
    size_t a = MainRows(q, m);
    const size_t a1 = end_;
    const bool dead = dead_ != nullptr;
    if (delta_.count == 0 && !dead) {
      const size_t end = std::min(a1, a + limit);
      if (a < end) out_->AddRows(main_.words, a, end, kind, max);
      return;
    }
    size_t b = Bound(delta_, q, m, false, 0, delta_.count);
    const size_t b1 = UpperFrom(delta_, q, m, b, delta_.count);
    for (size_t left = limit; left > 0;) {
      if (dead) while (a < a1 && IsDead(a)) a++;
      if (a >= a1 && b >= b1) return;
      size_t e;
      if (b < b1 && (a >= a1 || CompareRows(main_, a, delta_, b) >= 0)) {
        for (e = b + 1; e < b1 && e - b < left && (a >= a1 || CompareRows(main_, a, delta_, e) >= 0); e++) {
        }
        if (!out_->AddRows(delta_.words, b, e, kind, max)) return;
        left -= e - b;
        b = e;
      } else {
        for (e = a + 1; e < a1 && e - a < left && !(dead && IsDead(e)) && (b >= b1 || CompareRows(main_, e, delta_, b) < 0); e++) {
        }
        if (!out_->AddRows(main_.words, a, e, kind, max)) return;
        left -= e - a;
        a = e;
      }
    }
  }

 private:
  bool IsDead(size_t row) const { return (dead_[row >> 3] & (1u << (row & 7))) != 0; }

  // Signed: codes first, then the keys as unsigned 64-bit (posting-runs.ts compareRows).
  int64_t CompareRows(const Run& x, size_t i, const Run& y, size_t j) const {
    for (int l = 0; l < L_; l++) {
      const int d = static_cast<int>(x.codes[i * L_ + l]) - static_cast<int>(y.codes[j * L_ + l]);
      if (d != 0) return d;
    }
    const uint64_t kx = (static_cast<uint64_t>(x.words[2 * i + 1]) << 32) | x.words[2 * i];
    const uint64_t ky = (static_cast<uint64_t>(y.words[2 * j + 1]) << 32) | y.words[2 * j];
    return kx < ky ? -1 : (kx > ky ? 1 : 0);
  }

  int ComparePrefix(const Run& run, size_t row, const int32_t* q, int m) const {
    for (int j = 0; j < m; j++) {
      const int d = static_cast<int>(run.codes[row * L_ + j]) - q[j];
      if (d != 0) return d;
    }
    return 0;
  }

  // First row in [lo, hi) whose first m codes are >= q (> with `after`).
  size_t Bound(const Run& run, const int32_t* q, int m, bool after, size_t lo, size_t hi) const {
    while (lo < hi) {
      const size_t mid = (lo + hi) >> 1;
      const int d = ComparePrefix(run, mid, q, m);
      if (d < 0 || (after && d == 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // Bound(after = true) from a first row of the range: gallops, then bisects the last step.
  size_t UpperFrom(const Run& run, const int32_t* q, int m, size_t lo, size_t hi) const {
    size_t step = 1;
    size_t from = lo;
    for (;;) {
      const size_t probe = lo + step;
      if (probe >= hi) break;
      if (ComparePrefix(run, probe, q, m) != 0) break;
      from = probe;
      step *= 2;
    }
    return Bound(run, q, m, true, from, std::min(hi, lo + step));
  }

  int64_t CellStart(const int32_t* q, int k, bool after) const {
    int64_t p = 0;
    for (int j = 0; j < k; j++) {
      if (q[j] >= dir_.radix) return -1;
      p = p * dir_.radix + q[j];
    }
    if (after) p++;
    for (int j = k; j < dir_.depth; j++) p *= dir_.radix;
    return dir_.starts[p];
  }

  // Main's rows under the prefix q[0..m): returns the first, sets end_ past the last.
  size_t MainRows(const int32_t* q, int m) {
    size_t lo = 0, hi = main_.count;
    if (dir_.starts != nullptr) {
      const int k = std::min(m, dir_.depth);
      const int64_t start = CellStart(q, k, false);
      if (start >= 0) {
        lo = static_cast<size_t>(start);
        hi = static_cast<size_t>(CellStart(q, k, true));
        if (k == m) {
          end_ = hi;
          return lo;
        }
      }
    }
    const size_t a = Bound(main_, q, m, false, lo, hi);
    end_ = UpperFrom(main_, q, m, a, hi);
    return a;
  }

  Run main_;
  Run delta_;
  const uint8_t* dead_;
  Directory dir_;
  int L_;
  Candidates* out_;
  size_t end_ = 0;
};

bool CodesValid(const int32_t* codes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (codes[i] < 0 || codes[i] > kMaxCode) return false;
  }
  return true;
}

}  // namespace

// gatherBeam(mainCodes, mainWords, mainCount, deltaCodes, deltaWords, deltaCount, dead | null, dirStarts | null,
//   dirDepth, dirRadix, L, exact: Int32Array[] (one SID each), beamCodes: Int32Array[] (level l+1: width x (l+1)
//   codes), beamWidths: Int32Array, maxCandidates, stop, outWords, outMatch, outTable, outCounts, count)
// -> the set's new count, or -1, having written nothing, when an exact SID is not L codes, a code is outside
// [0, 65535] or the set has room for fewer than `stop` rows (the caller then gathers in JS).
Napi::Value GatherBeam(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 21) throw CodedError(kErrInvalidInput, "gatherBeam takes 21 arguments");
    const int L = static_cast<int>(GetPositiveInt(info[10], "L"));
    if (L < 1) throw CodedError(kErrInvalidInput, "L must be >= 1");
    auto run = [&](size_t c, size_t w, size_t n, const char* name) {
      View<uint16_t> codes = TypedView<uint16_t, napi_uint16_array>(info[c], name);
      View<uint32_t> words = TypedView<uint32_t, napi_uint32_array>(info[w], name);
      const size_t count = static_cast<size_t>(GetNonNegativeInt(info[n], name));
      if (codes.length < count * L || words.length < 2 * count) throw CodedError(kErrInvalidInput, std::string(name) + " run is shorter than its count");
      return Run{codes.data, words.data, count};
    };
    const Run main = run(0, 1, 2, "main");
    const Run delta = run(3, 4, 5, "delta");
    const uint8_t* dead = nullptr;
    if (!info[6].IsNull() && !info[6].IsUndefined()) {
      View<uint8_t> bits = TypedView<uint8_t, napi_uint8_array>(info[6], "dead");
      if (bits.length * 8 < main.count) throw CodedError(kErrInvalidInput, "dead has fewer bits than main has rows");
      dead = bits.data;
    }
    Directory dir;
    if (!info[7].IsNull() && !info[7].IsUndefined()) {
      Int32View starts = GetInt32Array(info[7], "dirStarts");
      dir.depth = static_cast<int>(GetNonNegativeInt(info[8], "dirDepth"));
      dir.radix = GetNonNegativeInt(info[9], "dirRadix");
      int64_t cells = 1;
      for (int j = 0; j < dir.depth && cells < static_cast<int64_t>(starts.length); j++) cells *= dir.radix;
      if (dir.depth < 1 || dir.depth > L || dir.radix < 1 || static_cast<int64_t>(starts.length) != cells + 1) throw CodedError(kErrInvalidInput, "dirStarts does not match depth and radix");
      dir.starts = starts.data;
    }
    Napi::Array exact = info[11].As<Napi::Array>();
    Napi::Array beam = info[12].As<Napi::Array>();
    Int32View widths = GetInt32Array(info[13], "beamWidths");
    const size_t maxCandidates = static_cast<size_t>(GetNonNegativeInt(info[14], "maxCandidates"));
    const size_t stop = std::min(static_cast<size_t>(GetNonNegativeInt(info[15], "stop")), maxCandidates);
    View<uint32_t> words = TypedView<uint32_t, napi_uint32_array>(info[16], "outWords");
    View<uint8_t> match = TypedView<uint8_t, napi_uint8_array>(info[17], "outMatch");
    View<int32_t> table = TypedView<int32_t, napi_int32_array>(info[18], "outTable");
    View<int32_t> counts = TypedView<int32_t, napi_int32_array>(info[19], "outCounts");
    const size_t count = static_cast<size_t>(GetNonNegativeInt(info[20], "count"));
    const size_t capacity = std::min(words.length / 2, match.length);
    if (table.length != 2 * capacity || (table.length & (table.length - 1)) != 0 || counts.length < 4) {
      throw CodedError(kErrInvalidInput, "the candidate arrays do not fit together");
    }
    if (widths.length != static_cast<size_t>(L) || beam.Length() != static_cast<uint32_t>(L)) throw CodedError(kErrInvalidInput, "the beam needs one level per SID level");
    if (stop > capacity || count > capacity) return Napi::Number::New(env, -1);

    std::vector<Int32View> exactSids(exact.Length());
    for (uint32_t i = 0; i < exact.Length(); i++) {
      exactSids[i] = GetInt32Array(exact.Get(i), "exact");
      // Another length, or a code out of range: the JS scans answer it (with the catalog's own error, if any).
      if (exactSids[i].length != static_cast<size_t>(L) || !CodesValid(exactSids[i].data, exactSids[i].length)) return Napi::Number::New(env, -1);
    }
    std::vector<Int32View> levels(L);
    for (int l = 0; l < L; l++) {
      levels[l] = GetInt32Array(beam.Get(static_cast<uint32_t>(l)), "beamCodes");
      const size_t need = static_cast<size_t>(widths.data[l]) * static_cast<size_t>(l + 1);
      if (widths.data[l] < 0 || levels[l].length < need) throw CodedError(kErrInvalidInput, "a beam level holds fewer codes than its width");
      if (!CodesValid(levels[l].data, need)) return Napi::Number::New(env, -1);
    }

    Candidates out{words.data, match.data, table.data, static_cast<uint32_t>(table.length - 1), counts.data, count};
    Gatherer gather(main, delta, dead, dir, L, &out);
    for (const Int32View& sid : exactSids) {
      if (out.count >= stop) break;
      gather.Visit(sid.data, L, maxCandidates - out.count, kExact, stop);
    }
    for (int l = L; l >= 1 && out.count < stop; l--) {
      const uint8_t kind = l == L ? kBeam : kPrefix;
      const bool whole = l == L;
      for (int32_t b = 0; b < widths.data[l - 1]; b++) {
        if (out.count >= stop) break;
        const size_t remaining = maxCandidates - out.count;
        // A shorter prefix also holds the items already taken from deeper levels: scan past them.
        gather.Visit(levels[l - 1].data + static_cast<size_t>(b) * l, l, whole ? remaining : remaining + out.count, kind, stop);
      }
    }
    return Napi::Number::New(env, static_cast<double>(out.count));
  });
}

}  // namespace sidx
