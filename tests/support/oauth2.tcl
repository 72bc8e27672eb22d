# oauth2.tcl: a fake OAuth2 token endpoint (HTTPS, tcl-tls, the test
# certificates of certs.tcl) inside the test's event loop. It answers every
# POST with JSON and records each request.
#
#   oauth2::start ?-option value ...?  -> handle (listens on 127.0.0.1, port 0)
#     -token T          access token issued; "%n" becomes the request's number
#                       (default "access-%n")
#     -expires-in N     (default 3600; "" leaves it out)
#     -refresh-token R  a (rotated) refresh_token in the answer ("" none)
#     -error {STATUS JSON}  answer STATUS with body JSON instead of a token,
#                       e.g. {400 {{"error":"invalid_client","error_description":"bad secret"}}}
#     -delay MS         answer after MS          -stall 1  never answer
#     -cert server|...  (default server)
#   oauth2::configure E OPTION VALUE   change an option (same names, without "-")
#   oauth2::url E  -> https://127.0.0.1:PORT/token     oauth2::port E
#   oauth2::requests E -> list of dicts: the form fields (grant_type,
#       client_id, client_secret, scope, refresh_token, assertion ...) plus
#       _path, _content_type
#   oauth2::tokens E -> the access tokens issued, in order
#   oauth2::wait_requests E N ?TIMEOUT_MS?
#   oauth2::stop E

namespace eval oauth2 {
    variable seq 0
    variable E            ;# "$e,key"
    variable live {}
}
harness::register_module oauth2

proc oauth2::start {args} {
    variable E; variable seq; variable live
    set e oauth[incr seq]
    array set o {-token access-%n -expires-in 3600 -refresh-token "" -error "" -delay 0 -stall 0 -cert server}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "oauth2::start: unknown option $k" }
        set o($k) $v
    }
    foreach k [array names o] { set E($e,[string range $k 1 end]) $o($k) }
    set c [cert $o(-cert)]
    set E($e,requests) {}
    set E($e,tokens) {}
    set E($e,chans) {}
    set E($e,listener) [tls::socket -server [list oauth2::accept $e] -myaddr 127.0.0.1 \
        -certfile [dict get $c cert] -keyfile [dict get $c key] -request 0 -require 0 \
        -command [list harness::tls_callback ""] 0]
    set E($e,port) [lindex [chan configure $E($e,listener) -sockname] 2]
    lappend live $e
    return $e
}

proc oauth2::configure {e key value} { set oauth2::E($e,$key) $value }
proc oauth2::port {e} { return $oauth2::E($e,port) }
proc oauth2::url {e} { return "https://127.0.0.1:$oauth2::E($e,port)/token" }
proc oauth2::requests {e} { return $oauth2::E($e,requests) }
proc oauth2::tokens {e} { return $oauth2::E($e,tokens) }

proc oauth2::wait_requests {e n {timeout ""}} {
    wait_until {[llength $oauth2::E($e,requests)] >= $n} $timeout "$n request(s) at token endpoint $e"
    return [requests $e]
}

proc oauth2::stop {e} {
    variable E; variable live
    if {![info exists E($e,listener)]} { return }
    catch {close $E($e,listener)}
    foreach ch $E($e,chans) { catch {close $ch} }
    set live [lsearch -all -inline -not -exact $live $e]
    unset E($e,listener)
}

proc oauth2::_cleanup {} {
    variable live
    foreach e $live { catch {stop $e} }
    return {}
}

proc oauth2::_report {} {
    variable E
    set out {}
    foreach key [lsort -dictionary [array names E *,port]] {
        set e [lindex [split $key ,] 0]
        set t "--- token endpoint $e (port $E($e,port)): [llength $E($e,requests)] request(s) ---"
        foreach r $E($e,requests) { append t "\n  [escape $r 300]" }
        lappend out $t
    }
    return $out
}

proc oauth2::_reset {} {
    variable E; variable live
    array unset E
    set live {}
}

proc oauth2::accept {e ch addr port} {
    variable E
    lappend E($e,chans) $ch
    chan configure $ch -blocking 0 -translation binary -buffering full
    set E($e,buf,$ch) ""
    fileevent $ch readable [list oauth2::handshake $e $ch]
}

proc oauth2::drop {e ch} {
    variable E
    catch {close $ch}
    array unset E $e,buf,$ch
    harness::wakeup
}

proc oauth2::handshake {e ch} {
    if {[catch {tls::handshake $ch} done]} {
        if {![string match -nocase "*temporarily unavailable*" $done]} { drop $e $ch }
        return
    }
    if {$done} {
        fileevent $ch readable [list oauth2::readable $e $ch]
        after idle [list oauth2::readable $e $ch]
    }
}

proc oauth2::readable {e ch} {
    variable E
    if {![info exists E($e,buf,$ch)]} { return }
    if {[catch {read $ch} data]} { drop $e $ch; return }
    append E($e,buf,$ch) $data
    set buf $E($e,buf,$ch)
    set end [string first "\r\n\r\n" $buf]
    if {$end < 0} {
        if {[eof $ch]} { drop $e $ch }
        return
    }
    set head [string range $buf 0 [expr {$end - 1}]]
    set length 0
    regexp -nocase -line {^content-length:\s*(\d+)} $head -> length
    set body [string range $buf [expr {$end + 4}] end]
    if {[string length $body] < $length} { return }
    fileevent $ch readable {}
    set E($e,buf,$ch) ""
    request $e $ch $head [string range $body 0 [expr {$length - 1}]]
}

proc oauth2::urldecode {s} {
    set s [string map {+ " "} $s]
    subst -novariables -nocommands [regsub -all {%([0-9A-Fa-f]{2})} [string map {\\ \\\\ [ \\[ $ \\$} $s] {\\u00\1}]
}

proc oauth2::request {e ch head body} {
    variable E
    set r [dict create]
    regexp {^\S+ (\S+)} $head -> path
    dict set r _path $path
    set ct ""
    regexp -nocase -line {^content-type:\s*(.*?)\s*$} $head -> ct
    dict set r _content_type $ct
    foreach pair [split $body &] {
        set kv [split $pair =]
        dict set r [urldecode [lindex $kv 0]] [urldecode [join [lrange $kv 1 end] =]]
    }
    lappend E($e,requests) $r
    harness::wakeup
    if {$E($e,stall)} { return }
    if {$E($e,delay) > 0} {
        after $E($e,delay) [list oauth2::answer $e $ch]
    } else {
        answer $e $ch
    }
}

proc oauth2::answer {e ch} {
    variable E
    if {![info exists E($e,listener)]} { return }
    set n [llength $E($e,requests)]
    if {$E($e,error) ne ""} {
        lassign $E($e,error) status json
    } else {
        set status 200
        set token [string map [list %n $n] $E($e,token)]
        lappend E($e,tokens) $token
        set json "\{\"access_token\":\"$token\",\"token_type\":\"Bearer\""
        if {$E($e,expires-in) ne ""} { append json ",\"expires_in\":$E($e,expires-in)" }
        if {$E($e,refresh-token) ne ""} { append json ",\"refresh_token\":\"$E($e,refresh-token)\"" }
        append json "\}"
    }
    set reason [dict get {200 OK 400 {Bad Request} 401 Unauthorized 500 {Internal Server Error} 503 {Service Unavailable}} $status]
    set json [encoding convertto utf-8 $json]
    catch {
        puts -nonewline $ch "HTTP/1.1 $status $reason\r\nContent-Type: application/json\r\nContent-Length: [string length $json]\r\nConnection: close\r\n\r\n$json"
        flush $ch
    }
    drop $e $ch
}
