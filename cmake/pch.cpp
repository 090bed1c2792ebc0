// The translation unit that builds a precompiled header (cmake/bellhop_pch.cmake); no code.
