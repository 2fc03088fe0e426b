//===- AOT.cpp - ahead-of-time output: objects, assembly, shared libraries ===//
//
// Object and assembly emission go through the target's legacy code generation pass manager
// (LLVM 19's back ends still run there) after the new-pass-manager IR pipeline. Shared libraries
// are linked by the system compiler driver, started with posix_spawnp (no shell, so no quoting
// problems with odd file names), its output captured through a pipe for the error message.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/Optimize.h"
#include "tessel/Support/Error.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace tessel::codegen {

namespace {

std::string runBackEnd(llvm::Module &module, const Target &target, const CodeGenOptions &opts,
                       llvm::CodeGenFileType type) {
  std::unique_ptr<llvm::TargetMachine> tm = target.createTargetMachine(opts);
  optimizeModule(module, *tm, opts);
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager passes;
  const char *what = type == llvm::CodeGenFileType::ObjectFile ? "object files" : "assembly";
  TESSEL_CHECK(!tm->addPassesToEmitFile(passes, os, nullptr, type), "target ", target.describe(),
               " cannot emit ", what, " for module '", module.getModuleIdentifier(), "'",
               type == llvm::CodeGenFileType::ObjectFile && target.kind() == TargetKind::NVPTX
                   ? "; NVPTX emits PTX text: use emitAssembly"
                   : "");
  passes.run(module);
  return std::string(buffer.begin(), buffer.end());
}

std::string quoteArgs(const std::vector<std::string> &argv) {
  std::string out;
  for (const auto &a : argv)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

} // namespace

std::vector<char> emitObject(llvm::Module &module, const Target &target,
                             const CodeGenOptions &opts) {
  TESSEL_CHECK(target.kind() != TargetKind::NVPTX, "target ", target.describe(),
               " has no object files here: NVPTX emits PTX text; use emitAssembly");
  std::string bytes = runBackEnd(module, target, opts, llvm::CodeGenFileType::ObjectFile);
  return std::vector<char>(bytes.begin(), bytes.end());
}

std::string emitAssembly(llvm::Module &module, const Target &target, const CodeGenOptions &opts) {
  return runBackEnd(module, target, opts, llvm::CodeGenFileType::AssemblyFile);
}

void writeObjectFile(llvm::Module &module, const Target &target, const std::string &path,
                     const CodeGenOptions &opts) {
  std::vector<char> bytes = emitObject(module, target, opts);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  TESSEL_CHECK(out, "cannot open object file '", path, "' for writing: ", std::strerror(errno));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  TESSEL_CHECK(out, "cannot write object file '", path, "'");
}

void linkSharedLibrary(const std::vector<std::string> &objects, const std::string &output,
                       const LinkOptions &link) {
  TESSEL_CHECK(!objects.empty(), "linking shared library '", output, "': no object files given");
  TESSEL_CHECK(!link.driver.empty(), "linking shared library '", output,
               "': the compiler driver name is empty");
  std::vector<std::string> args = {link.driver, "-shared", "-o", output};
  args.insert(args.end(), objects.begin(), objects.end());
  args.insert(args.end(), link.extraArgs.begin(), link.extraArgs.end());
  std::vector<char *> argv;
  for (auto &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  // The driver's stdout and stderr go to one pipe, read until it closes.
  int fds[2];
  TESSEL_CHECK(pipe(fds) == 0, "linking shared library '", output,
               "': cannot create a pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  ::unlink(output.c_str()); // a stale library must not pass for a fresh one
  pid_t pid = 0;
  int spawnError = posix_spawnp(&pid, link.driver.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawnError != 0) {
    ::close(fds[0]);
    fail("linking shared library '", output, "': cannot run compiler driver '", link.driver,
         "': ", std::strerror(spawnError));
  }
  std::string printed;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      printed.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break;
  }
  ::close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    TESSEL_CHECK(errno == EINTR, "linking shared library '", output, "': waiting for '",
                 link.driver, "' failed: ", std::strerror(errno));
  }
  if (WIFSIGNALED(status))
    fail("linking shared library '", output, "': '", quoteArgs(args), "' was killed by signal ",
         WTERMSIG(status), printed.empty() ? "" : ": ", printed);
  TESSEL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "linking shared library '", output,
               "': '", quoteArgs(args), "' failed with exit status ", WEXITSTATUS(status),
               printed.empty() ? "" : ": ", printed);
  struct stat info;
  TESSEL_CHECK(::stat(output.c_str(), &info) == 0, "linking shared library '", output, "': '",
               quoteArgs(args), "' succeeded but left no output file");
}

void emitSharedLibrary(llvm::Module &module, const std::string &output,
                       const CodeGenOptions &opts, const LinkOptions &link) {
  std::string object = output + ".o";
  writeObjectFile(module, Target::host(), object, opts);
  try {
    linkSharedLibrary({object}, output, link);
  } catch (...) {
    ::unlink(object.c_str());
    throw;
  }
  ::unlink(object.c_str());
}

} // namespace tessel::codegen
