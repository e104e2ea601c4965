// `lowbit report RUN_DIR`: one self-contained HTML file (inline SVG, no
// network) from a run folder the demo wrote:
//   - training curves (running train loss and accuracy from each epoch's first step, every 20 steps,
//     validation accuracy per epoch) of the teacher and every student
//     (RUN_DIR/curves-*.jsonl, written by --metrics);
//   - the comparison table (RUN_DIR/table.md);
//   - accuracy against model size for every variant;
//   - per-layer quantization error, weight and output SQNR (quant/analyze.h),
//     of the quantized checkpoints, on 64 training images;
//   - a histogram of one 4-bit layer's weights (one output channel) with its
//     quantization grid.
// A script at the end stamps each chart with its rendered size
// and its series' points (data-rendered="WxH:POINTS"), which the test reads
// back from headless Chromium; each series is a g.series with its kind and
// point count (data-kind, data-points).
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "quant/analyze.h"
#include "quant/checkpoint.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

std::string num(double v, int prec = 3) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*g", prec, v);
  return b;
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;
  bool dots = false;  // markers instead of a line
};

// An x/y chart: axes with 5 ticks each, one polyline (or dots) per series, a legend.
std::string xy_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                     const std::vector<Series>& series, bool log_x = false) {
  const double W = 560, H = 320, L = 60, R = 150, T = 30, B = 45;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto fx = [&](double x) { return log_x ? std::log10(x) : x; };
  for (const auto& s : series)
    for (auto [x, y] : s.pts) {
      if (!std::isfinite(y) || (log_x && x <= 0)) continue;
      x0 = std::min(x0, fx(x)), x1 = std::max(x1, fx(x)), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (fx(x) - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"" << W / 2 - R / 2 << "\" y=\"18\" class=\"title\">"
    << esc(title) << "</text>\n";
  o << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
    << "\" class=\"axis\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\"" << H - B
    << "\" class=\"axis\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    const double xp = L + (W - L - R) * i / 4, yp = py(yv);
    o << "<text x=\"" << xp << "\" y=\"" << H - B + 16 << "\" class=\"tick\">" << num(log_x ? std::pow(10, xv) : xv)
      << "</text><text x=\"" << L - 6 << "\" y=\"" << yp + 4 << "\" class=\"tick y\">" << num(yv) << "</text>"
      << "<line x1=\"" << L << "\" y1=\"" << yp << "\" x2=\"" << W - R << "\" y2=\"" << yp << "\" class=\"grid\"/>\n";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" class=\"label\">" << esc(xlabel)
    << "</text><text x=\"14\" y=\"" << (T + H - B) / 2 << "\" class=\"label\" transform=\"rotate(-90 14 "
    << (T + H - B) / 2 << ")\">" << esc(ylabel) << "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* c = kColors[i % 8];
    // Each series in a group that says its kind and how many points it drew
    // (the render test reads these back: a curve needs at least 2).
    int drawn = 0;
    for (auto [x, y] : s.pts) drawn += std::isfinite(y) && !(log_x && x <= 0);
    o << "<g class=\"series\" data-kind=\"" << (s.dots ? "dots" : "line") << "\" data-points=\"" << drawn << "\">";
    if (s.dots) {
      for (auto [x, y] : s.pts)
        if (std::isfinite(y)) o << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"5\" fill=\"" << c << "\"/>";
    } else {
      o << "<path fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" d=\"";
      bool first = true;
      for (auto [x, y] : s.pts) {
        if (!std::isfinite(y)) continue;
        o << (first ? "M" : " L") << px(x) << "," << py(y);
        first = false;
      }
      o << "\"/>";
      if (s.pts.size() == 1) o << "<circle cx=\"" << px(s.pts[0].first) << "\" cy=\"" << py(s.pts[0].second) << "\" r=\"4\" fill=\"" << c << "\"/>";
    }
    o << "</g><rect x=\"" << W - R + 10 << "\" y=\"" << T + 18 * i << "\" width=\"12\" height=\"12\" fill=\"" << c
      << "\"/><text x=\"" << W - R + 28 << "\" y=\"" << T + 18 * i + 10 << "\" class=\"legend\">" << esc(s.name)
      << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// Grouped bars: one group per category, one bar per series.
std::string bar_chart(const std::string& title, const std::string& ylabel, const std::vector<std::string>& cats,
                      const std::vector<Series>& series) {
  const double H = 320, L = 60, T = 30, B = 110, bw = 7;
  const double group = bw * (double)series.size() + 4, W = std::max(560.0, L + 150 + group * (double)cats.size());
  double y1 = 1e-9;
  for (const auto& s : series)
    for (auto [x, y] : s.pts)
      if (std::isfinite(y)) y1 = std::max(y1, y);
  y1 *= 1.05;
  auto py = [&](double y) { return H - B - std::max(0.0, y) / y1 * (H - T - B); };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"" << L << "\" y=\"18\" class=\"title\">" << esc(title)
    << "</text>\n<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - 150 << "\" y2=\"" << H - B
    << "\" class=\"axis\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double yv = y1 * i / 4;
    o << "<text x=\"" << L - 6 << "\" y=\"" << py(yv) + 4 << "\" class=\"tick y\">" << num(yv) << "</text><line x1=\""
      << L << "\" y1=\"" << py(yv) << "\" x2=\"" << W - 150 << "\" y2=\"" << py(yv) << "\" class=\"grid\"/>\n";
  }
  o << "<text x=\"14\" y=\"" << (T + H - B) / 2 << "\" class=\"label\" transform=\"rotate(-90 14 " << (T + H - B) / 2
    << ")\">" << esc(ylabel) << "</text>\n";
  for (size_t c = 0; c < cats.size(); ++c) {
    const double gx = L + 4 + group * (double)c;
    for (size_t s = 0; s < series.size(); ++s) {
      const double y = c < series[s].pts.size() ? series[s].pts[c].second : NAN;
      if (!std::isfinite(y)) continue;  // +inf (no error) or no value: no bar
      o << "<rect x=\"" << gx + bw * (double)s << "\" y=\"" << py(y) << "\" width=\"" << bw - 1 << "\" height=\""
        << H - B - py(y) << "\" fill=\"" << kColors[s % 8] << "\"><title>" << esc(cats[c]) << " " << esc(series[s].name)
        << ": " << num(y) << "</title></rect>";
    }
    o << "<text x=\"" << gx + group / 2 << "\" y=\"" << H - B + 8 << "\" class=\"cat\" transform=\"rotate(60 "
      << gx + group / 2 << " " << H - B + 8 << ")\">" << esc(cats[c]) << "</text>\n";
  }
  for (size_t s = 0; s < series.size(); ++s) {
    int drawn = 0;  // the series' bars, for the render test
    for (size_t c = 0; c < cats.size() && c < series[s].pts.size(); ++c) drawn += std::isfinite(series[s].pts[c].second);
    o << "<g class=\"series\" data-kind=\"bars\" data-points=\"" << drawn << "\"><rect x=\"" << W - 140 << "\" y=\""
      << T + 18 * s << "\" width=\"12\" height=\"12\" fill=\"" << kColors[s % 8] << "\"/></g><text x=\"" << W - 122
      << "\" y=\"" << T + 18 * s + 10 << "\" class=\"legend\">" << esc(series[s].name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// A histogram of `values` (60 bins) with vertical lines at the grid points.
std::string histogram(const std::string& title, const std::vector<float>& values, const std::vector<double>& grid) {
  std::vector<double> lines = grid;
  double lo = *std::min_element(values.begin(), values.end()), hi = *std::max_element(values.begin(), values.end());
  for (double g : grid) lo = std::min(lo, g), hi = std::max(hi, g);
  if (hi - lo < 1e-12) hi = lo + 1;
  const int nb = 60;
  std::vector<int> counts(nb, 0);
  for (float v : values) counts[(size_t)std::min(nb - 1, (int)((v - lo) / (hi - lo) * nb))]++;
  const double W = 560, H = 300, L = 50, R = 20, T = 30, B = 40;
  const int cmax = std::max(1, *std::max_element(counts.begin(), counts.end()));
  auto px = [&](double x) { return L + (x - lo) / (hi - lo) * (W - L - R); };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"" << L << "\" y=\"18\" class=\"title\">" << esc(title)
    << "</text>\n<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
    << "\" class=\"axis\"/>\n";
  o << "<g class=\"series\" data-kind=\"bars\" data-points=\"" << std::count_if(counts.begin(), counts.end(), [](int n) { return n > 0; })
    << "\">";
  for (int i = 0; i < nb; ++i) {
    const double h = (double)counts[(size_t)i] / cmax * (H - T - B);
    o << "<rect x=\"" << px(lo + (hi - lo) * i / nb) << "\" y=\"" << H - B - h << "\" width=\""
      << (W - L - R) / nb - 1 << "\" height=\"" << h << "\" fill=\"#1f77b4\"/>";
  }
  o << "</g>";
  for (double g : lines)
    o << "<line x1=\"" << px(g) << "\" y1=\"" << T << "\" x2=\"" << px(g) << "\" y2=\"" << H - B
      << "\" stroke=\"#d62728\" stroke-width=\"1\" stroke-dasharray=\"3,2\"/>";
  for (int i = 0; i <= 4; ++i)
    o << "<text x=\"" << px(lo + (hi - lo) * i / 4) << "\" y=\"" << H - B + 16 << "\" class=\"tick\">"
      << num(lo + (hi - lo) * i / 4) << "</text>";
  o << "<text x=\"" << W / 2 << "\" y=\"" << H - 6 << "\" class=\"label\">weight / step (red: the quantization grid)</text>\n</svg>\n";
  return o.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

// 1. The training curves of every curves-*.jsonl: loss, accuracy, validation.
void curves_section(const std::string& dir, std::ostream& body, int& charts) {
  std::vector<Series> loss, acc, val;
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("curves-", 0) == 0 && n.size() > 13 && n.substr(n.size() - 6) == ".jsonl") files.push_back(n);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string name = f.substr(7, f.size() - 13);
      Series l{name, {}}, t{name, {}}, v{name, {}, false};
      for (const auto& line : lines_of(dir + "/" + f)) {
        const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        auto num = [&](const char* key) {
          const auto it = j.is_object() ? j.find(key) : j.end();
          return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
        };
        if (j.is_object() && j.contains("step")) {
          l.pts.emplace_back(num("epoch_progress"), num("train_loss"));
          t.pts.emplace_back(num("epoch_progress"), 100 * num("train_accuracy"));
        } else if (j.is_object() && j.contains("epoch")) {  // the epoch's mean, at its end
          l.pts.emplace_back(num("epoch"), num("train_loss"));
          t.pts.emplace_back(num("epoch"), 100 * num("train_accuracy"));
          v.pts.emplace_back(num("epoch"), 100 * num("val_accuracy"));
        }
      }
      loss.push_back(l), acc.push_back(t), val.push_back(v);
    }
  }
  body << "<h2>Training</h2>\n<div class=\"row\">" << xy_chart("Training loss (running mean per epoch)", "epoch", "loss", loss)
       << xy_chart("Training accuracy (running)", "epoch", "accuracy (%)", acc)
       << xy_chart("Validation accuracy per epoch", "epoch", "accuracy (%)", val) << "</div>\n";
  charts += 3;

}

// 2. The table, and 3. accuracy against size.
void table_section(const std::string& dir, std::ostream& body, int& charts) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : lines_of(dir + "/table.md")) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    std::getline(ss, c, '|');
    while (std::getline(ss, c, '|')) {
      const size_t b = c.find_first_not_of(' '), e = c.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : c.substr(b, e - b + 1));
    }
    if (!cells.empty() && cells[0].rfind("---", 0) != 0) rows.push_back(cells);
  }
  body << "<h2>The cycle</h2>\n<table>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    body << "<tr>";
    for (const auto& c : rows[r]) body << (r == 0 ? "<th>" : "<td>") << esc(c) << (r == 0 ? "</th>" : "</td>");
    body << "</tr>\n";
  }
  body << "</table>\n";
  std::vector<Series> points;
  for (size_t r = 1; r < rows.size(); ++r)
    if (rows[r].size() >= 4)
      points.push_back({rows[r][0], {{std::strtod(rows[r][3].c_str(), nullptr), std::strtod(rows[r][2].c_str(), nullptr)}}, true});
  body << "<div class=\"row\">" << xy_chart("Accuracy against model size", "size (MB, log scale)", "accuracy (%)", points, true)
       << "</div>\n";
  ++charts;

}

// 4. Per-layer error and 5. a weight histogram, from the quantized checkpoints.
void layer_sections(const Args& report_args, const std::string& dir, std::ostream& body, int& charts) {
  // The data and model flags as eval reads them (report itself takes only --data).
  Args a = report_args;
  a.scopes = {"eval"};
  DataFlags df = data_flags(a);
  data::DatasetPtr train = data::limit(open_split(df, true, 0), 64, 0);
  data::DataLoader loader(train, {.batch_size = 64}, eval_transform(df));
  const Tensor batch = loader.make_batch(0, 0).images;
  bool histogram_done = false;
  for (const std::string stage : {"ptq_histogram", "qat_w4a4_kd"}) {
    const std::string f = dir + "/" + stage + ".safetensors";
    if (!exists(f)) continue;
    Args base;
    base.scopes = {"eval"};
    const Args fa = with_checkpoint_defaults(base, load_safetensors(f).metadata);
    nn::ModulePtr model = nn::create_model(fa.get("--model", ""), model_config(fa, *train));
    auto q = quant::load_quantized(f, model);
    const auto layers = quant::analyze(*q, batch);
    std::vector<std::string> cats;
    Series w{"weights", {}}, y{"output", {}};
    for (size_t i = 0; i < layers.size(); ++i) {
      cats.push_back(layers[i].path);
      w.pts.emplace_back((double)i, layers[i].weight_bits ? layers[i].weight_sqnr_db : NAN);
      y.pts.emplace_back((double)i, layers[i].output_sqnr_db);
    }
    body << "<h2>Quantization error per layer: " << esc(stage) << "</h2>\n<div class=\"row\">"
         << bar_chart("SQNR per layer, float vs quantized, on 64 training images (" + stage + ")", "SQNR (dB)", cats, {w, y})
         << "</div>\n";
    ++charts;
    if (histogram_done || stage != "qat_w4a4_kd") continue;
    // The 4-bit conv with the most weights: every weight over its channel's
    // step (w / s_k), so one integer grid fits all channels.
    NoGradGuard ng;
    quant::FusedConv2d* best = nullptr;
    std::string best_path;
    q->model()->for_each_module([&](const std::string& path, nn::Module& m) {
      auto* c = dynamic_cast<quant::FusedConv2d*>(&m);
      if (!c || !c->weight_quantizer() || c->weight_quantizer()->spec().bits != 4) return;
      if (!best || c->folded_weight_bias().first.numel() > best->folded_weight_bias().first.numel()) best = c, best_path = path;
    });
    if (best) {
      const Tensor wt = best->folded_weight_bias().first;
      const quant::Quantizer& wq = *best->weight_quantizer();
      const std::vector<float> scales = wq.qparams().scale, all = wt.to_vector();
      const int64_t k = wt.shape()[0], per = wt.numel() / k;
      std::vector<float> steps(all.size());
      for (int64_t o = 0; o < k; ++o)
        for (int64_t i2 = 0; i2 < per; ++i2)
          steps[(size_t)(o * per + i2)] = all[(size_t)(o * per + i2)] / scales[scales.size() == 1 ? 0 : (size_t)o];
      std::vector<double> grid;
      for (int g = wq.qmin(); g <= wq.qmax(); ++g) grid.push_back(g);
      body << "<h2>Weights of " << esc(best_path) << " (4-bit, " << k << " output channels)</h2>\n<div class=\"row\">"
           << histogram(best_path + ": " + std::to_string(all.size()) + " weights / step, " +
                            std::to_string(grid.size()) + " grid points",
                        steps, grid)
           << "</div>\n";
      histogram_done = true;
    }
    charts += histogram_done;
  }

}

void write_html(const std::string& out, const std::string& dir, const std::string& body) {
  std::ofstream html(out);
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lowbit run " << esc(dir) << "</title>\n<style>\n"
       << "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
       << ".row{display:flex;flex-wrap:wrap;gap:12px}svg.chart{border:1px solid #ddd;background:#fff}\n"
       << ".title{font-size:13px;font-weight:bold}.tick,.cat,.legend{font-size:10px}.tick{text-anchor:middle}"
       << ".tick.y{text-anchor:end}.label{font-size:11px;text-anchor:middle}.axis{stroke:#333}.grid{stroke:#eee}\n"
       << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
       << "td:first-child,th:first-child,td:nth-child(2){text-align:left}\n</style></head><body>\n"
       << "<h1>lowbit: train → distill → quantize → int8 (" << esc(dir) << ")</h1>\n"
       << body
       << "<script>\nfor (const s of document.querySelectorAll('svg.chart')) {\n"
          "  const b = s.getBBox();\n"
          "  s.setAttribute('data-rendered', Math.round(b.width) + 'x' + Math.round(b.height) + ':' +\n"
          "                 [...s.querySelectorAll('g.series')].reduce((n, g) => n + (+g.dataset.points), 0));\n}\n</script>\n</body></html>\n";
  html.close();
  LOWBIT_CHECK(html.good(), "report: could not write ", out);
}

}  // namespace

int cmd_report(const Args& a) {
  a.reject_unknown();
  if (a.positional.empty()) throw UsageError("which run folder? (lowbit report RUN_DIR, as lowbit demo wrote it)");
  const std::string dir = a.positional[0];
  if (!exists(dir + "/table.md") || !exists(dir + "/metrics.jsonl"))
    throw UsageError(dir + ": not a finished demo run folder (no table.md and metrics.jsonl)");
  const std::string out = a.get("--out", dir + "/report.html");
  check_output_path("--out", out);

  std::ostringstream body;
  int charts = 0;
  curves_section(dir, body, charts);
  table_section(dir, body, charts);
  layer_sections(a, dir, body, charts);
  write_html(out, dir, body.str());
  if (a.has("--json"))
    std::printf("%s\n", json_line({{"report", out}, {"charts", charts}}).c_str());
  else
    std::printf("wrote %s (%d charts)\n", out.c_str(), charts);
  return 0;
}

}  // namespace lowbit::cli
