#include "bench/internal/tls.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lotse::bench {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return out.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MakeMutualTlsServerCredentials(absl::string_view pki_dir,
                               absl::string_view server_name) {
  absl::StatusOr<std::string> ca = ReadFile(absl::StrCat(pki_dir, "/ca.crt"));
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> crt =
      ReadFile(absl::StrCat(pki_dir, "/servers/", server_name, ".crt"));
  if (!crt.ok()) return crt.status();
  absl::StatusOr<std::string> key =
      ReadFile(absl::StrCat(pki_dir, "/servers/", server_name, ".key"));
  if (!key.ok()) return key.status();

  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *std::move(ca);
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(crt)});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeMutualTlsChannelCredentials(absl::string_view pki_dir,
                                absl::string_view client_name) {
  absl::StatusOr<std::string> ca = ReadFile(absl::StrCat(pki_dir, "/ca.crt"));
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> crt =
      ReadFile(absl::StrCat(pki_dir, "/clients/", client_name, ".crt"));
  if (!crt.ok()) return crt.status();
  absl::StatusOr<std::string> key =
      ReadFile(absl::StrCat(pki_dir, "/clients/", client_name, ".key"));
  if (!key.ok()) return key.status();

  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *std::move(ca);
  options.pem_private_key = *std::move(key);
  options.pem_cert_chain = *std::move(crt);
  return grpc::SslCredentials(options);
}

}  // namespace lotse::bench
