// safetensors reader/writer; the JSON header through nlohmann/json (see
// core/safetensors.h for the format and the dtype rules).
//
// The reader trusts nothing in the file: the header length, every offset and
// every shape are checked against the file size before a byte of tensor data
// is read, and every failure names the file and the reason in one line.
#include "core/safetensors.h"
#include "core/strings.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lowbit {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping here");

namespace {

// The reference implementation refuses headers above 100 MB; so do we, so a
// corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int kMaxJsonDepth = 64;

// ---- JSON value and parser ----------------------------------------------------

struct JsonMember;  // defined after Json: a member holds a Json by value

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // string value, or the number literal as written
  std::vector<Json> items;
  std::vector<JsonMember> members;  // in file order; duplicates kept
};

struct JsonMember {
  std::string key;
  Json value;
};

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::null: return "null";
    case Json::Kind::boolean: return "a boolean";
    case Json::Kind::number: return "a number";
    case Json::Kind::string: return "a string";
    case Json::Kind::array: return "an array";
    case Json::Kind::object: return "an object";
  }
  return "?";
}

// Builds the header's tree from nlohmann/json's event parser (RFC 8259,
// strict UTF-8, iterative: no recursion on hostile nesting), keeping what the
// checks below need: members in file order with duplicates (refused by name),
// numbers as written (a fraction or an exponent is not an integer), and at
// most kMaxJsonDepth levels. Syntax errors report the byte offset in the file
// (header byte + 8), so a hex dump finds the spot.
class TreeBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit TreeBuilder(std::string prefix) : prefix_(std::move(prefix)) {}
  Json root;

  bool null() override { return put(Json{}); }
  bool boolean(bool b) override {
    Json v;
    v.kind = Json::Kind::boolean;
    v.boolean = b;
    return put(std::move(v));
  }
  bool number_integer(number_integer_t n) override { return put(number(std::to_string(n))); }
  bool number_unsigned(number_unsigned_t n) override { return put(number(std::to_string(n))); }
  bool number_float(number_float_t, const string_t& literal) override { return put(number(literal)); }
  bool string(string_t& text) override {
    Json v;
    v.kind = Json::Kind::string;
    v.text = std::move(text);
    return put(std::move(v));
  }
  bool binary(binary_t&) override { return false; }  // not in JSON text
  bool start_object(std::size_t) override { return open(Json::Kind::object); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Json::Kind::array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 6: syntax error while parsing
    // object separator - unexpected number literal; expected ':'" → from "object separator" on,
    // without the token it last read (a hostile file's bytes, of any length).
    std::string why = e.what();
    const size_t at = why.find("while parsing ");
    if (at != std::string::npos) why = why.substr(at + 14);
    const size_t last = why.find("; last read: '");
    if (last != std::string::npos) why = why.substr(0, last) + why.substr(why.rfind('\'') + 1);
    if (why.find("expected end of input") != std::string::npos) why = "unexpected data after the JSON object";
    fail(prefix_, "invalid JSON header at file byte ", 8 + (position ? position - 1 : 0), ": ", why);
  }

 private:
  static Json number(std::string literal) {
    Json v;
    v.kind = Json::Kind::number;
    v.text = std::move(literal);
    return v;
  }
  // Adds v to the open container (or as the root); returns where it lives.
  Json* place(Json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    Json& parent = *stack_.back();
    if (parent.kind == Json::Kind::object) {
      parent.members.push_back(JsonMember{std::move(key_), std::move(v)});
      return &parent.members.back().value;
    }
    parent.items.push_back(std::move(v));
    return &parent.items.back();
  }
  bool put(Json v) {
    place(std::move(v));
    return true;
  }
  bool open(Json::Kind kind) {
    if (stack_.size() >= (size_t)kMaxJsonDepth) fail(prefix_, "invalid JSON header: nesting deeper than ", kMaxJsonDepth);
    Json v;
    v.kind = kind;
    stack_.push_back(place(std::move(v)));  // the parent is not written to while a child is open
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string prefix_;
  std::string key_;
  std::vector<Json*> stack_;
};

Json parse_header(const std::string& header, const std::string& prefix) {
  TreeBuilder b(prefix);
  nlohmann::json::sax_parse(header, &b);
  return std::move(b.root);
}

// A JSON string as nlohmann/json writes it; Error if `s` is not UTF-8 (no
// reader, lowbit's included, would take it back).
std::string json_string(const std::string& s, const std::string& prefix) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::type_error&) {
    fail(prefix, "'", s, "' is not valid UTF-8 and cannot be stored in the JSON header");
  }
}

// ---- dtypes -----------------------------------------------------------------------

enum class FileDType { F32, F64, I32, I64, I8, U8 };

struct FileDTypeInfo {
  const char* name;
  FileDType file;
  DType mem;
  size_t bytes;
};

constexpr FileDTypeInfo kFileDTypes[] = {
    {"F32", FileDType::F32, DType::f32, 4}, {"F64", FileDType::F64, DType::f32, 8},
    {"I32", FileDType::I32, DType::s32, 4}, {"I64", FileDType::I64, DType::s32, 8},
    {"I8", FileDType::I8, DType::s8, 1},    {"U8", FileDType::U8, DType::u8, 1},
};

const char* file_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::s32: return "I32";
    case DType::s8: return "I8";
    case DType::u8: return "U8";
  }
  return "?";
}

const void* raw_bytes(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>();
    case DType::s32: return t.data<int32_t>();
    case DType::s8: return t.data<int8_t>();
    case DType::u8: return t.data<uint8_t>();
  }
  return nullptr;
}

void* raw_bytes_mut(const Tensor& t) { return const_cast<void*>(raw_bytes(t)); }

// ---- file helpers -------------------------------------------------------------------

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Unsigned integer from a JSON number written without sign, fraction or exponent.
uint64_t json_uint(const Json& v, const std::string& prefix, const std::string& what) {
  if (v.kind != Json::Kind::number) fail(prefix, what, " must be a non-negative integer, found ", kind_name(v.kind));
  uint64_t out = 0;
  const char* b = v.text.data();
  const char* e = b + v.text.size();
  auto [ptr, ec] = std::from_chars(b, e, out);
  if (ec == std::errc::result_out_of_range) fail(prefix, what, " ", v.text, " is too large");
  if (ec != std::errc() || ptr != e) fail(prefix, what, " must be a non-negative integer, found ", v.text);
  return out;
}

const Json* find_member(const Json& obj, const char* key) {
  for (const auto& [k, v] : obj.members)
    if (k == key) return &v;
  return nullptr;
}

std::string offsets_str(uint64_t b, uint64_t e) {
  // Appends rather than chained operator+: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
  std::string s = "[";
  s += std::to_string(b);
  s += ", ";
  s += std::to_string(e);
  s += ']';
  return s;
}

// Where the bytes come from: an open file, or a string in memory.
struct Source {
  std::FILE* file = nullptr;
  const std::string* bytes = nullptr;
};

void read_exact(const Source& src, void* dst, uint64_t offset, uint64_t n, const std::string& prefix) {
  if (n == 0) return;
  if (src.bytes) {
    if (offset > src.bytes->size() || n > src.bytes->size() - offset)
      fail(prefix, "short read at byte ", offset, " (", n, " bytes wanted)");
    std::memcpy(dst, src.bytes->data() + offset, n);
    return;
  }
  std::FILE* f = src.file;
  if (fseeko(f, (off_t)offset, SEEK_SET) != 0) fail(prefix, "cannot seek to byte ", offset, ": ", std::strerror(errno));
  if (std::fread(dst, 1, n, f) != n)
    fail(prefix, "short read at byte ", offset, " (", n, " bytes wanted; file truncated while reading?)");
}

struct PendingTensor {
  std::string name;
  const FileDTypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

// ---- SafetensorsFile ------------------------------------------------------------------

const Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& [k, t] : tensors)
    if (k == name) return t;
  fail("safetensors file '", path, "': no tensor named '", name, "' (the file has ", tensors.size(), " tensors)");
}

bool SafetensorsFile::has(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return true;
  return false;
}

// ---- load ---------------------------------------------------------------------------------

namespace {
SafetensorsFile parse_safetensors(const Source& f, uint64_t file_size, const std::string& prefix, const std::string& path);
}

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string prefix = "safetensors file '" + path + "': ";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(prefix, "no such file");
    fail(prefix, "cannot open: ", std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) fail(prefix, "is a directory, not a file");
  if (!S_ISREG(st.st_mode)) fail(prefix, "not a regular file");
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(prefix, "cannot open: ", std::strerror(errno));
  return parse_safetensors(Source{f.get(), nullptr}, (uint64_t)st.st_size, prefix, path);
}

SafetensorsFile load_safetensors_bytes(const std::string& bytes, const std::string& name) {
  return parse_safetensors(Source{nullptr, &bytes}, bytes.size(), "safetensors file '" + name + "': ", name);
}

namespace {
SafetensorsFile parse_safetensors(const Source& f, uint64_t file_size, const std::string& prefix, const std::string& path) {
  SafetensorsFile out;
  out.path = path;

  if (file_size < 8) fail(prefix, "file is ", file_size, " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  read_exact(f, len_bytes, 0, 8, prefix);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file_size - 8) {
    // Most often another kind of file given where a checkpoint was meant.
    const std::string_view m(reinterpret_cast<const char*>(len_bytes), 8);
    const char* kind = m.substr(0, 4) == "\x89PNG" ? "a PNG image"
                       : m.substr(0, 3) == "\xff\xd8\xff" ? "a JPEG image"
                       : m.substr(0, 4) == "PK\x03\x04" ? "a zip archive (PyTorch's torch.save writes these; convert "
                                                         "the state dict with safetensors.torch.save_file)"
                       : m.substr(0, 2) == "\x1f\x8b" ? "a gzip file"
                       : (len_bytes[0] == 0x80 && len_bytes[1] >= 2 && len_bytes[1] <= 5) ? "a Python pickle (torch.save's "
                                                                                          "legacy format)"
                                                                                        : nullptr;
    if (kind) fail(prefix, "is ", kind, ", not a safetensors file");
    fail(prefix, "not a safetensors file: its first 8 bytes, the header length, say ", header_len,
         " but the file has ", file_size, " bytes");
  }
  if (header_len > kMaxHeaderBytes)
    fail(prefix, "header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (header_len == 0) fail(prefix, "header length is 0 (no JSON header)");

  std::string header(header_len, '\0');
  read_exact(f, header.data(), 8, header_len, prefix);
  Json root = parse_header(header, prefix);
  if (root.kind != Json::Kind::object) fail(prefix, "header is ", kind_name(root.kind), ", not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  std::vector<PendingTensor> pending;
  std::set<std::string> seen;
  for (const auto& [name, entry] : root.members) {
    if (!seen.insert(name).second) fail(prefix, "duplicate name '", printable(name), "' in the header");
    if (name == "__metadata__") {
      if (entry.kind == Json::Kind::null) continue;
      if (entry.kind != Json::Kind::object) fail(prefix, "__metadata__ is ", kind_name(entry.kind), ", not an object");
      for (const auto& [k, v] : entry.members) {
        if (v.kind != Json::Kind::string)
          fail(prefix, "__metadata__ value of '", k, "' is ", kind_name(v.kind), ", not a string");
        if (!out.metadata.emplace(k, v.text).second) fail(prefix, "duplicate __metadata__ key '", k, "'");
      }
      continue;
    }
    const std::string where = "tensor '" + printable(name) + "': ";
    if (entry.kind != Json::Kind::object) fail(prefix, where, "entry is ", kind_name(entry.kind), ", not an object");
    const Json* dtype = find_member(entry, "dtype");
    const Json* shape = find_member(entry, "shape");
    const Json* offsets = find_member(entry, "data_offsets");
    if (!dtype) fail(prefix, where, "missing \"dtype\"");
    if (!shape) fail(prefix, where, "missing \"shape\"");
    if (!offsets) fail(prefix, where, "missing \"data_offsets\"");

    PendingTensor p;
    p.name = name;
    p.dtype = nullptr;
    if (dtype->kind != Json::Kind::string) fail(prefix, where, "dtype is ", kind_name(dtype->kind), ", not a string");
    for (const auto& info : kFileDTypes)
      if (dtype->text == info.name) p.dtype = &info;
    if (!p.dtype) fail(prefix, where, "unknown dtype '", printable(dtype->text), "' (supported: F32, F64, I32, I64, I8, U8)");

    if (shape->kind != Json::Kind::array) fail(prefix, where, "shape is ", kind_name(shape->kind), ", not an array");
    // `extent` is the product of the extents with a 0 counted as 1: what a
    // Tensor's strides (and the partial products of its element count) reach.
    // It must fit in int64 even when the tensor is empty: a shape such as
    // [0, 2^40, 2^40] holds no bytes yet would overflow them.
    uint64_t extent = 1;
    bool overflow = false;
    for (const Json& d : shape->items) {
      uint64_t n = json_uint(d, prefix + where, "shape entry");
      if (n > (uint64_t)std::numeric_limits<int64_t>::max()) fail(prefix, where, "shape entry ", n, " is too large");
      p.shape.push_back((int64_t)n);
      const uint64_t e = std::max<uint64_t>(n, 1);
      if (extent > (uint64_t)std::numeric_limits<int64_t>::max() / e) overflow = true;
      else extent *= e;
    }
    bool empty = false;
    for (int64_t n : p.shape) empty |= n == 0;
    const uint64_t numel = empty ? 0 : extent;
    if (!overflow && numel > std::numeric_limits<uint64_t>::max() / p.dtype->bytes) overflow = true;
    if (overflow) fail(prefix, where, "shape ", shape_str(p.shape), " is too large");
    const uint64_t nbytes = numel * p.dtype->bytes;

    if (offsets->kind != Json::Kind::array || offsets->items.size() != 2)
      fail(prefix, where, "data_offsets must be an array [begin, end]");
    p.begin = json_uint(offsets->items[0], prefix + where, "data_offsets begin");
    p.end = json_uint(offsets->items[1], prefix + where, "data_offsets end");
    if (p.begin > p.end) fail(prefix, where, "data_offsets ", offsets_str(p.begin, p.end), " has begin > end");
    if (p.end > data_size)
      fail(prefix, where, "data_offsets ", offsets_str(p.begin, p.end), " out of range (the data section is ",
           data_size, " bytes)");
    if (p.end - p.begin != nbytes)
      fail(prefix, where, "data_offsets ", offsets_str(p.begin, p.end), " hold ", p.end - p.begin, " bytes but shape ",
           shape_str(p.shape), " of ", p.dtype->name, " needs ", nbytes, " bytes");
    pending.push_back(std::move(p));
  }

  // No two tensors may share bytes (empty tensors share nothing).
  std::vector<const PendingTensor*> by_offset;
  for (const auto& p : pending)
    if (p.end > p.begin) by_offset.push_back(&p);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const PendingTensor* a, const PendingTensor* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const PendingTensor* a = by_offset[i - 1];
    const PendingTensor* b = by_offset[i];
    if (b->begin < a->end)
      fail(prefix, "tensors '", a->name, "' ", offsets_str(a->begin, a->end), " and '", b->name, "' ",
           offsets_str(b->begin, b->end), " overlap in the data section");
  }

  for (const auto& p : pending) {
    Tensor t = Tensor::empty(p.shape, p.dtype->mem);
    const uint64_t nbytes = p.end - p.begin;
    const uint64_t at = data_start + p.begin;
    const int64_t n = t.numel();
    switch (p.dtype->file) {
      case FileDType::F32:
      case FileDType::I32:
      case FileDType::I8:
      case FileDType::U8:
        read_exact(f, raw_bytes_mut(t), at, nbytes, prefix);
        break;
      case FileDType::F64: {
        std::vector<double> buf((size_t)n);
        read_exact(f, buf.data(), at, nbytes, prefix);
        float* dst = t.data<float>();
        for (int64_t i = 0; i < n; ++i) dst[i] = (float)buf[(size_t)i];
        break;
      }
      case FileDType::I64: {
        std::vector<int64_t> buf((size_t)n);
        read_exact(f, buf.data(), at, nbytes, prefix);
        int32_t* dst = t.data<int32_t>();
        for (int64_t i = 0; i < n; ++i) {
          int64_t v = buf[(size_t)i];
          if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
            fail(prefix, "tensor '", p.name, "': I64 value ", v, " at index ", i, " does not fit in s32");
          dst[i] = (int32_t)v;
        }
        break;
      }
    }
    out.tensors.emplace_back(p.name, std::move(t));
  }
  return out;
}
}  // namespace

// ---- save -----------------------------------------------------------------------------------

namespace {

void write_all(int fd, const void* data, size_t n, const std::string& prefix, const std::string& tmp) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t(1) << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(prefix, "cannot write '", tmp, "': ", std::strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

// PATH.tmp.<pid> files left by a writer that was killed (its process is gone):
// removed before the next write of PATH, so a crash leaves no litter for long.
// A temporary of a live process (another writer) is left alone.
void remove_stale_temporaries(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const long p = std::stol(pid);
    if (p > 0 && p != (long)::getpid() && ::kill((pid_t)p, 0) != 0 && errno == ESRCH)
      ::unlink((slash == std::string::npos ? name : dir + name).c_str());
  }
  ::closedir(d);
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string prefix = "save_safetensors '" + path + "': ";

  // Validate and lay out everything before touching the disk.
  std::set<std::string> names;
  std::vector<Tensor> contig;
  contig.reserve(tensors.size());
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      header += json_string(k, prefix);
      header += ':';
      header += json_string(v, prefix);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail(prefix, "'__metadata__' is reserved and cannot name a tensor");
    if (!names.insert(name).second) fail(prefix, "duplicate tensor name '", name, "'");
    if (!t.defined()) fail(prefix, "tensor '", name, "' is undefined");
    Tensor c = t.contiguous();
    const uint64_t nbytes = (uint64_t)c.numel() * dtype_size(c.dtype());
    if (header.size() > 1) header += ',';
    header += json_string(name, prefix);
    header += ":{\"dtype\":\"";
    header += file_dtype_name(c.dtype());
    header += "\",\"shape\":[";
    for (size_t i = 0; i < c.shape().size(); ++i) {
      if (i) header += ',';
      header += std::to_string(c.shape()[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
    contig.push_back(std::move(c));
  }
  header += '}';
  // Pad with spaces so the data section starts 8-byte aligned (8 + N ≡ 0 mod 8).
  while (header.size() % 8 != 0) header += ' ';
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = (unsigned char)((uint64_t)header.size() >> (8 * i));

  // rename() replaces whatever the path names; only a regular file may be
  // replaced (as root, "--out /dev/full" would otherwise swap a device node
  // for a regular file).
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail(prefix, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file", "; only regular files are replaced");
  remove_stale_temporaries(path);
  const std::string tmp = path + ".tmp." + std::to_string((long)::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(prefix, "cannot create '", tmp, "': ", std::strerror(errno));
  try {
    write_all(fd, len_bytes, 8, prefix, tmp);
    write_all(fd, header.data(), header.size(), prefix, tmp);
    for (const Tensor& c : contig) {
      const size_t nbytes = (size_t)c.numel() * dtype_size(c.dtype());
      if (nbytes) write_all(fd, raw_bytes(c), nbytes, prefix, tmp);
    }
    if (::fsync(fd) != 0) fail(prefix, "fsync of '", tmp, "' failed: ", std::strerror(errno));
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) fail(prefix, "closing '", tmp, "' failed: ", std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail(prefix, "cannot rename '", tmp, "' to the destination: ", std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; best effort (some file systems refuse fsync on directories).
  int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace lowbit
