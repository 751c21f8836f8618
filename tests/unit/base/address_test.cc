#include "base/address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace l7px {
namespace {

SocketAddress Addr(std::string_view text) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(text);
  EXPECT_TRUE(addr.ok()) << text << ": " << addr.status();
  return addr.ok() ? *addr : SocketAddress();
}

Cidr MakeCidr(std::string_view text) {
  absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
  EXPECT_TRUE(cidr.ok()) << text << ": " << cidr.status();
  return cidr.ok() ? *cidr : Cidr();
}

std::string Ip(const SocketAddress& addr) {
  char buf[64];
  const size_t n = addr.FormatIp(buf, sizeof(buf));
  return std::string(buf, n);
}

TEST(SocketAddressTest, ParsesIpv4) {
  SocketAddress a = Addr("127.0.0.1:8080");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.length(), sizeof(sockaddr_in));
  EXPECT_EQ(a.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(Ip(a), "127.0.0.1");
  EXPECT_TRUE(a.is_loopback());
  EXPECT_FALSE(a.is_unix());
  EXPECT_EQ(a.unix_path(), "");

  SocketAddress b = Addr("10.1.2.3:0");
  EXPECT_EQ(b.port(), 0);
  EXPECT_FALSE(b.is_loopback());
  EXPECT_EQ(Addr("127.255.0.9:65535").port(), 65535);
  EXPECT_TRUE(Addr("127.255.0.9:1").is_loopback());
  EXPECT_EQ(Addr("1.2.3.4:08080").port(), 8080);
}

TEST(SocketAddressTest, AnyAndLocalhostForms) {
  EXPECT_EQ(Addr("*:80").ToString(), "0.0.0.0:80");
  EXPECT_EQ(Addr(":80").ToString(), "0.0.0.0:80");
  EXPECT_EQ(Addr("0.0.0.0:80").ToString(), "0.0.0.0:80");
  EXPECT_EQ(Addr("localhost:80").ToString(), "127.0.0.1:80");
  EXPECT_FALSE(Addr("0.0.0.0:80").is_loopback());
}

TEST(SocketAddressTest, ParsesIpv6) {
  SocketAddress a = Addr("[::1]:8080");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.length(), sizeof(sockaddr_in6));
  EXPECT_EQ(a.ToString(), "[::1]:8080");
  EXPECT_EQ(Ip(a), "::1");
  EXPECT_TRUE(a.is_loopback());

  SocketAddress b = Addr("[2001:DB8::1]:443");
  EXPECT_EQ(b.ToString(), "[2001:db8::1]:443");
  EXPECT_FALSE(b.is_loopback());

  EXPECT_TRUE(Addr("[::ffff:127.0.0.1]:1").is_loopback());
  EXPECT_FALSE(Addr("[::ffff:10.0.0.1]:1").is_loopback());
  EXPECT_EQ(Addr("[::]:9").ToString(), "[::]:9");
}

TEST(SocketAddressTest, ParsesUnix) {
  SocketAddress a = Addr("unix:/tmp/l7px.sock");
  EXPECT_TRUE(a.is_unix());
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(a.unix_path(), "/tmp/l7px.sock");
  EXPECT_EQ(a.ToString(), "unix:/tmp/l7px.sock");
  EXPECT_EQ(a.port(), 0);
  EXPECT_TRUE(a.is_loopback());
  EXPECT_EQ(Ip(a), "unix");
  EXPECT_EQ(a.length(), offsetof(sockaddr_un, sun_path) + std::strlen("/tmp/l7px.sock") + 1);

  const std::string longest(sizeof(sockaddr_un{}.sun_path) - 1, 'x');
  EXPECT_EQ(Addr("unix:" + longest).unix_path(), longest);
  EXPECT_FALSE(SocketAddress::Parse("unix:" + longest + "x").ok());
}

TEST(SocketAddressTest, RejectsBadInput) {
  const std::string with_nul("127.0.0.1\0junk:80", 17);
  const std::string unix_nul("unix:/tmp/a\0b", 13);
  for (std::string_view bad : {std::string_view(""),
                               std::string_view("127.0.0.1"),
                               std::string_view("127.0.0.1:"),
                               std::string_view("127.0.0.1:65536"),
                               std::string_view("127.0.0.1:-1"),
                               std::string_view("127.0.0.1:+80"),
                               std::string_view("127.0.0.1:8o"),
                               std::string_view("127.0.0.1:123456"),
                               std::string_view("256.0.0.1:80"),
                               std::string_view("1.2.3:80"),
                               std::string_view("example.com:80"),
                               std::string_view("[::1:80"),
                               std::string_view("[]:80"),
                               std::string_view("[::1]"),
                               std::string_view("::1:80"),
                               std::string_view("[::g]:80"),
                               std::string_view("[fe80::1%lo]:80"),
                               std::string_view("unix:"),
                               std::string_view("1.2.3.4 :80"),
                               std::string_view(with_nul),
                               std::string_view(unix_nul)}) {
    EXPECT_FALSE(SocketAddress::Parse(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_THAT(std::string(SocketAddress::Parse("example.com:80").status().message()),
              testing::HasSubstr("example.com:80"));
}

TEST(SocketAddressTest, FromSockaddrMatchesParse) {
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = htons(1234);
  inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr);
  SocketAddress a =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4));
  EXPECT_EQ(a, Addr("192.0.2.7:1234"));
  EXPECT_FALSE(a == Addr("192.0.2.7:1235"));
  EXPECT_FALSE(a == Addr("192.0.2.8:1234"));
  EXPECT_FALSE(Addr("[::1]:80") == Addr("127.0.0.1:80"));
  EXPECT_EQ(Addr("unix:/a"), Addr("unix:/a"));
  EXPECT_FALSE(Addr("unix:/a") == Addr("unix:/b"));
}

TEST(SocketAddressTest, FormatIpRespectsCapacity) {
  SocketAddress a = Addr("192.0.2.7:1");
  char buf[8] = {'z'};
  EXPECT_EQ(a.FormatIp(buf, 0), 0u);
  EXPECT_EQ(a.FormatIp(buf, 4), 0u);  // "192.0.2.7" does not fit
  EXPECT_EQ(buf[0], '\0');
  char unix_buf[4];
  EXPECT_EQ(Addr("unix:/x").FormatIp(unix_buf, sizeof(unix_buf)), 0u);
  // A default-constructed address is neither inet nor unix.
  EXPECT_EQ(Ip(SocketAddress()), "");
}

// SplitAddress is the reading SocketAddress::Parse and the service SDK share: host names and
// unbracketed IPv6 pass it (the SDK resolves them), the port and the text's shape do not.
TEST(SplitAddressTest, SplitsWithoutResolving) {
  absl::StatusOr<AddressParts> p = SplitAddress("proxy.example:9999");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->is_unix);
  EXPECT_EQ(p->host, "proxy.example");
  EXPECT_FALSE(p->bracketed);
  EXPECT_EQ(p->port, 9999);

  p = SplitAddress("[fe80::1%lo]:443");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->host, "fe80::1%lo");
  EXPECT_TRUE(p->bracketed);
  EXPECT_EQ(p->port, 443);

  p = SplitAddress("::1:80");  // the last ':' ends the host
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->host, "::1");
  EXPECT_FALSE(p->bracketed);

  p = SplitAddress(":0");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->host, "");
  EXPECT_EQ(p->port, 0);

  p = SplitAddress("unix:/run/l7px.sock");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->is_unix);
  EXPECT_EQ(p->path, "/run/l7px.sock");
  EXPECT_EQ(p->host, "");
}

TEST(SplitAddressTest, RejectsBadShape) {
  const std::string with_nul("host\0junk:80", 12);
  const std::string too_long = "unix:" + std::string(sizeof(sockaddr_un{}.sun_path), 'x');
  for (std::string_view bad :
       {std::string_view(""), std::string_view("host"), std::string_view("host:"),
        std::string_view("host:65536"), std::string_view("host:8o"), std::string_view("host:+80"),
        std::string_view("host:123456"), std::string_view("[::1:80"), std::string_view("[]:80"),
        std::string_view("[::1]"), std::string_view("unix:"), std::string_view(too_long),
        std::string_view(with_nul)}) {
    EXPECT_FALSE(SplitAddress(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_THAT(std::string(SplitAddress("host:99999").status().message()),
              testing::HasSubstr("host:99999"));
}

TEST(CidrTest, ParsesAndMasksHostBits) {
  Cidr c = MakeCidr("10.1.2.3/8");
  EXPECT_EQ(c.family(), AF_INET);
  EXPECT_EQ(c.prefix_len(), 8);
  EXPECT_EQ(c.ToString(), "10.0.0.0/8");
  EXPECT_EQ(MakeCidr("192.168.1.7").ToString(), "192.168.1.7/32");
  EXPECT_EQ(MakeCidr("192.168.3.255/23").ToString(), "192.168.2.0/23");
  EXPECT_EQ(MakeCidr("::1").ToString(), "::1/128");
  EXPECT_EQ(MakeCidr("2001:db8:ffff::1/33").ToString(), "2001:db8:8000::/33");
  EXPECT_EQ(MakeCidr("2001:db8::/32").family(), AF_INET6);
  EXPECT_EQ(MakeCidr("1.2.3.4/0").ToString(), "0.0.0.0/0");
}

TEST(CidrTest, ContainsIpv4) {
  Cidr c = MakeCidr("10.0.0.0/8");
  EXPECT_TRUE(c.Contains(Addr("10.0.0.0:1")));
  EXPECT_TRUE(c.Contains(Addr("10.255.255.255:1")));
  EXPECT_FALSE(c.Contains(Addr("11.0.0.0:1")));
  EXPECT_FALSE(c.Contains(Addr("9.255.255.255:1")));

  Cidr odd = MakeCidr("192.168.2.0/23");
  EXPECT_TRUE(odd.Contains(Addr("192.168.2.0:1")));
  EXPECT_TRUE(odd.Contains(Addr("192.168.3.255:1")));
  EXPECT_FALSE(odd.Contains(Addr("192.168.4.0:1")));
  EXPECT_FALSE(odd.Contains(Addr("192.168.1.255:1")));
}

TEST(CidrTest, PrefixEdgeCases) {
  Cidr all4 = MakeCidr("0.0.0.0/0");
  EXPECT_TRUE(all4.Contains(Addr("0.0.0.0:1")));
  EXPECT_TRUE(all4.Contains(Addr("255.255.255.255:1")));
  EXPECT_TRUE(all4.Contains(Addr("[::ffff:8.8.8.8]:1")));
  EXPECT_FALSE(all4.Contains(Addr("[2001:db8::1]:1")));

  Cidr host4 = MakeCidr("192.0.2.7/32");
  EXPECT_TRUE(host4.Contains(Addr("192.0.2.7:9")));
  EXPECT_FALSE(host4.Contains(Addr("192.0.2.6:9")));
  EXPECT_FALSE(host4.Contains(Addr("192.0.2.8:9")));

  Cidr all6 = MakeCidr("::/0");
  EXPECT_TRUE(all6.Contains(Addr("[::1]:1")));
  EXPECT_TRUE(all6.Contains(Addr("[ffff::1]:1")));

  Cidr host6 = MakeCidr("2001:db8::1/128");
  EXPECT_TRUE(host6.Contains(Addr("[2001:db8::1]:1")));
  EXPECT_FALSE(host6.Contains(Addr("[2001:db8::2]:1")));
  EXPECT_FALSE(host6.Contains(Addr("[2001:db8::]:1")));

  Cidr net6 = MakeCidr("2001:db8::/33");
  EXPECT_TRUE(net6.Contains(Addr("[2001:db8:7fff::1]:1")));
  EXPECT_FALSE(net6.Contains(Addr("[2001:db8:8000::1]:1")));
}

TEST(CidrTest, V4MappedV6MatchesV4Prefix) {
  Cidr c = MakeCidr("10.0.0.0/8");
  EXPECT_TRUE(c.Contains(Addr("[::ffff:10.1.1.1]:80")));
  EXPECT_FALSE(c.Contains(Addr("[::ffff:11.1.1.1]:80")));
  // Only v4-mapped addresses count, not other v6 addresses ending in the same bytes.
  EXPECT_FALSE(c.Contains(Addr("[::10.1.1.1]:80")));
  EXPECT_FALSE(c.Contains(Addr("[2001:db8::a01:101]:80")));
  EXPECT_TRUE(MakeCidr("127.0.0.1/32").Contains(Addr("[::ffff:127.0.0.1]:5")));
}

TEST(CidrTest, FamilyMismatchAndUnixNeverMatch) {
  EXPECT_FALSE(MakeCidr("::1/128").Contains(Addr("127.0.0.1:1")));
  EXPECT_FALSE(MakeCidr("0.0.0.0/0").Contains(Addr("unix:/tmp/s")));
  EXPECT_FALSE(MakeCidr("::/0").Contains(Addr("unix:/tmp/s")));
}

TEST(CidrTest, RejectsBadInput) {
  const std::string with_nul("10.0.0.0\0/8", 11);
  for (std::string_view bad :
       {std::string_view(""), std::string_view("x"), std::string_view("/8"),
        std::string_view("10.0.0.0/"), std::string_view("10.0.0.0/33"),
        std::string_view("10.0.0.0/-1"), std::string_view("10.0.0.0/+8"),
        std::string_view("10.0.0.0/8/8"), std::string_view("10.0.0.0/1000"),
        std::string_view("10.0.0/8"), std::string_view("10.0.0.0/ 8"), std::string_view("::/129"),
        std::string_view("[::1]/128"), std::string_view("10.0.0.0:80"),
        std::string_view("10.0.0.0/0x8"), std::string_view(with_nul)}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_THAT(std::string(Cidr::Parse("10.0.0.0/33").status().message()),
              testing::HasSubstr("10.0.0.0/33"));
}

}  // namespace
}  // namespace l7px
