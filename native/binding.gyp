{
  "targets": [
    {
      "target_name": "sidx_faiss",
      "sources": [
        "src/addon.cc",
        "src/beam_search.cc",
        "src/boundary.cc",
        "src/clustering.cc",
        "src/index_wrap.cc",
        "src/pq_codes.cc",
        "src/posting_gather.cc",
        "src/sq8_codes.cc",
        "src/codes_rerank.cc",
        "src/slot_codes.cc",
        "src/slot_map.cc",
        "src/subset_scoring.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-fopenmp-simd"],
      "libraries": ["-lfaiss", "-lopenblas", "-lgomp"]
    }
  ]
}
