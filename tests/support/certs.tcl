# certs.tcl: test certificates, made with the openssl CLI at run time (never
# committed, so they never expire in the repository). Generated once per run
# in RUNDIR/certs on first use.
#
#   cert NAME   -> dict {cert PATH key PATH}
#     ca         the test CA (trust anchor for tls_ca_file)
#     server     CN 127.0.0.1, SAN IP:127.0.0.1 IP:::1 DNS:localhost, signed by ca
#     untrusted  self-signed, same names
#     expired    signed by ca, same names, notAfter one day before notBefore
#     wronghost  signed by ca, valid, but only for DNS:wrong.example
#   certs::dir  -> the directory holding them (ca.crt, server.crt, ...)

namespace eval certs {
    variable dir ""
    variable parent ""       ;# where they go (default: the run directory)
    variable names {ca server untrusted expired wronghost}
}

proc cert {name} {
    if {$name ni $certs::names} {
        error "cert: unknown certificate \"$name\" (known: $certs::names)"
    }
    certs::generate
    return [dict create \
        cert [file join $certs::dir $name.crt] \
        key  [file join $certs::dir $name.key]]
}

proc certs::dir {} {
    generate
    variable dir
    return $dir
}

proc certs::openssl {args} {
    variable dir
    if {[catch {exec openssl {*}$args 2>@1} out]} {
        error "openssl $args failed: $out"
    }
}

proc certs::generate {} {
    variable dir
    if {$dir ne "" && [file exists [file join $dir done]]} { return }
    variable parent
    set dir [expr {$parent ne "" ? $parent : [file join $::harness::rundir certs]}]
    file mkdir $dir
    set cnf [file join $dir openssl.cnf]
    set f [open $cnf w]
    puts $f {[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
subjectKeyIdentifier = hash
[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash}
    close $f

    foreach name $certs::names {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out [file join $dir $name.key]
    }
    set ca [file join $dir ca]
    openssl req -config $cnf -new -x509 -key $ca.key -days 30 \
        -subj "/CN=subrelay test CA" -extensions ca_ext -out $ca.crt
    set u [file join $dir untrusted]
    openssl req -config $cnf -new -x509 -key $u.key -days 30 \
        -subj /CN=127.0.0.1 -extensions leaf_ext -out $u.crt

    set serial 4096
    foreach {name cn ext days} {
        server    127.0.0.1     leaf_ext  30
        expired   127.0.0.1     leaf_ext  -1
        wronghost wrong.example wrong_ext 30
    } {
        set base [file join $dir $name]
        openssl req -config $cnf -new -key $base.key -subj /CN=$cn -out $base.csr
        openssl x509 -req -in $base.csr -CA $ca.crt -CAkey $ca.key \
            -set_serial [incr serial] -days $days \
            -extfile $cnf -extensions $ext -out $base.crt
    }
    close [open [file join $dir done] w]
}
