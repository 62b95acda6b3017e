// JS class `BeamSearch`: the level-wise beam of src/numeric/beam-graph.ts over a model's codebooks, in native code.
// The query path's ORT run then only computes the latent (the encoder MLP) and the encoder's own codes; the beam's
// table reads, additions and top-B selections (a few hundred thousand scalar operations per query) run here instead
// of as ~40 small ONNX nodes, whose per-node overhead was most of the merged model's run.
//
//   new BeamSearch(codebooks: Float32Array[], dim: number, lutMaxBytes: number, crossNorms?: Float32Array[])   [sync]
//       codebooks[l] is K_l x dim row-major; C_j C_l^T tables (j < l) are built when their total size is at most
//       lutMaxBytes, else each level multiplies the prefixes' codeword sums by C_l^T (BLAS sgemm), as the graph does;
//       crossNorms[l]: the ||c||^2 the encoder's level-l Gemm adds, when search is to be given its outputs
//   levels, dim                                                                  [sync] getters
//   search(z: Float32Array, n, width, normWeight, codes: Int32Array, scores: Float32Array,
//          own?: Int32Array, cross?: Float32Array[]): void   [sync]
//       z is n x dim; writes, level after level (l = 1..L), the n x B_l x l prefixes into `codes` and their n x B_l
//       scores into `scores` (B_l = min(width, B_{l-1} K_l)), best first; lengths must match exactly
//       own (n x L, the encoder's codes) and cross[l] (n x K_l, its level-l Gemm outputs -2 <r_l, c> + ||c||^2) stand
//       in for the codebook dot products, when the tables and crossNorms exist (else they are ignored)
//
// Scores and ties follow the graph: score(p, c) = score(p) + (-2 <z, c> + w ||c||^2) + 2 w <s_p, c>, level 1 adds
// ||z||^2; the B_l lowest are kept, a tie going to the lower flat index (parent-major, then code), as ORT's TopK does.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "boundary.h"

namespace sidx {

class BeamSearch : public Napi::ObjectWrap<BeamSearch> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BeamSearch(const Napi::CallbackInfo& info);

 private:
  Napi::Value Levels(const Napi::CallbackInfo& info);
  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);

  // -2 <z_r, c> + w ||c||^2 of every level's codewords for `rows` query rows (zc_[l], rows x K_l).
  void LevelDots(const float* z, size_t rows, float w);
  // The same from the encoder's quantizer: its Gemm outputs G_l = -2 <r_l, c> + ||c||^2 on the residual r_l = z - sum
  // of the own codewords of the levels before, so -2 <z, c> = G_l - ||c||^2 - 2 sum_j <C_j[own_j], c> (the tables).
  void CrossDots(size_t first, size_t rows, float w, const int32_t* own, const std::vector<FloatView>& cross);
  // One query row (row `row_in_block` of the last LevelDots); the beam state lives in the scratch members.
  void SearchRow(const float* z, size_t width, float w, size_t row, size_t row_in_block, size_t n, int32_t* codes, float* scores);
  // Keeps the `keep` lowest of children_[0..count) (ties: lower index) in order_, sorted.
  void SelectBest(size_t count, size_t keep);

  size_t dim_ = 0;
  std::vector<size_t> sizes_;
  std::vector<std::vector<float>> codebooks_;
  std::vector<std::vector<float>> norms_;
  // tables_[l][j]: C_j C_l^T, K_j x K_l (only with use_lut_).
  std::vector<std::vector<std::vector<float>>> tables_;
  bool use_lut_ = true;
  // ||c||^2 as the encoder's Gemm added it (its codebook_l_sqnorm), per level; empty: no cross input.
  std::vector<std::vector<float>> cross_norms_;

  // Rows whose codeword dot products are computed together (LevelDots).
  static constexpr size_t kDotBlockRows = 8;
  std::vector<std::vector<float>> zc_;  // per level: -2 <z, c> + w ||c||^2, block rows x K_l
  std::vector<float> children_;  // B_{l-1} x K_l child scores
  std::vector<uint32_t> order_;  // chosen child indices
  using ScoredChild = std::pair<float, uint32_t>;  // (score, child): lexicographic order = the graph's TopK order
  std::vector<ScoredChild> best_;  // SelectBest's buffer of the best children so far
  std::vector<int32_t> prefix_, next_prefix_;  // B x l codes of the beam
  std::vector<float> beam_scores_, kept_;
  std::vector<float> sums_, next_sums_, pair_;  // codeword sums and <s_p, c> without tables
};

}  // namespace sidx
