// See captured_stderr below.
#pragma once

#include <cstdio>
#include <string>

#include <unistd.h>

namespace toolkit {

// Runs `call` with stderr (fd 2) sent to a temporary file and returns what was written there, on
// one line: libpng/libjpeg (inside OpenCV) and OpenVINO's frontends print their own messages
// ("libpng error: Read Error", absl log lines), which would make more lines on stderr; the
// runner puts them into its one error line instead.
template <typename F>
inline std::string captured_stderr(F&& call) {
  std::FILE* tmp = std::tmpfile();
  const int saved = tmp ? ::dup(2) : -1;
  if (saved < 0) {
    if (tmp) std::fclose(tmp);
    call();
    return "";
  }
  std::fflush(stderr);
  ::dup2(::fileno(tmp), 2);
  struct Restore {
    int saved;
    ~Restore() {
      std::fflush(stderr);
      ::dup2(saved, 2);
      ::close(saved);
    }
  };
  {
    Restore restore{saved};
    call();
  }
  std::string text;
  std::rewind(tmp);
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0 && text.size() < 4096;) text.append(buf, n);
  std::fclose(tmp);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& ch : text)
    if (ch == '\n') ch = ';';
  return text;
}

}  // namespace toolkit
